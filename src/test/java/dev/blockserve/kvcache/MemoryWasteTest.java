package dev.blockserve.kvcache;

import dev.blockserve.bench.MemoryWasteSimulation;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Paging allocates on demand, so the memory holding no token stays a fraction of a block per request. */
class MemoryWasteTest {

	@Test
	void pagedWasteStaysUnderFourPercentAtBlockSize16() {
		MemoryWasteSimulation.Result r = MemoryWasteSimulation.run(16, 600, 7);
		assertThat(r.pagedWaste()).isLessThan(0.04);
		assertThat(r.pagedWaste()).isLessThan(r.reservedWaste() / 10);
	}
}
