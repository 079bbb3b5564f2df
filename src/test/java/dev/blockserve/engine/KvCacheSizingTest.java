package dev.blockserve.engine;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The default KV budget follows the model and stops at what the machine can spare. */
class KvCacheSizingTest {

	private static final long GIB = 1L << 30;

	@Test
	void aSmallModelGetsTwiceItsContext() {
		// SmolLM2-135M: 30 layers, 3 KV heads of 64, F32 cache: 46,080 bytes a token, context 8192
		var b = KvCacheSizing.auto(46_080, 8192, 270L << 20, 24 * GIB, 6 * GIB);
		assertThat(b.bytes()).isEqualTo(2L * 8192 * 46_080);
		assertThat(b.why()).contains("16,384 tokens").contains("45 KiB a token");
	}

	@Test
	void aShortContextStillGetsRoomForManyShortRequests() {
		var b = KvCacheSizing.auto(1_000, 512, 1 << 20, 24 * GIB, 6 * GIB);
		assertThat(b.bytes()).isEqualTo(KvCacheSizing.MIN_TOKENS * 1_000);
	}

	@Test
	void aLongContextIsCappedAtAQuarterOfTheMachine() {
		// Llama 3.1 8B: 32 layers, 8 KV heads of 128: 262,144 bytes a token, context 131,072
		var b = KvCacheSizing.auto(262_144, 131_072, 16 * GIB, 128 * GIB, 8 * GIB);
		assertThat(b.bytes()).isEqualTo(32 * GIB);
		assertThat(b.why()).contains("a quarter of its 131,072 MiB");
	}

	@Test
	void bigWeightsLeaveLessForTheCache() {
		// 16 GiB of weights, a 6 GiB heap and the reserve on a 24 GiB machine leave 1.5 GiB
		var b = KvCacheSizing.auto(262_144, 131_072, 16 * GIB, 24 * GIB, 6 * GIB);
		assertThat(b.bytes()).isEqualTo(24 * GIB - 16 * GIB - 6 * GIB - KvCacheSizing.RESERVE);
	}

	@Test
	void aMachineWithNothingToSpareStillGetsTheFloor() {
		var b = KvCacheSizing.auto(262_144, 131_072, 30 * GIB, 24 * GIB, 6 * GIB);
		assertThat(b.bytes()).isEqualTo(KvCacheSizing.FLOOR);
	}
}
