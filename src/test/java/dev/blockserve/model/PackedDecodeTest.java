package dev.blockserve.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.support.TestModelWriter;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * BF16 matrices packed to 12 bits a weight for batch-1 decode ({@link CpuBackend#packForDecode}) give the
 * same numbers as the BF16 matrices themselves, bit for bit: one-token prompts run one at a time, so every
 * matmul (the LM head's included) has one row of x and reads the packed form. The kernel-level check, rows
 * that cannot be packed included, is in native/tests/cpu_kernel_test.cpp.
 */
class PackedDecodeTest {

	@TempDir
	Path tmp;

	@Test
	void packedMatricesDecodeExactlyAsTheBf16Ones() throws IOException {
		TestModelWriter w = new TestModelWriter();
		w.dtype = "BF16";
		w.hidden = 128;
		w.intermediate = 256;
		w.headDim = 32;
		w.vocab = 192;
		w.tied = false;
		Path dir = w.write(tmp.resolve("bf16"));
		List<OfflineGenerator.Result> plain, packed;
		try (CpuBackend b = new CpuBackend(0).packedDecode(false)) {
			plain = run(dir, b, 0);
		}
		try (CpuBackend b = new CpuBackend(0)) {
			Assumptions.assumeTrue(b.canPackForDecode(),
					"the CPU lacks AVX-512 VBMI (or the level is below avx512): nothing is packed here");
			long before = b.liveBytes();
			// per matrix: 64-byte header, a byte a row (padded), and 16 + 96 bytes a row for every 64 weights
			long expected = 0;
			for (int[] mk : new int[][] { { 128, 128 }, { 64, 128 }, { 64, 128 }, { 128, 128 }, { 256, 128 }, { 256, 128 },
					{ 128, 256 } }) {
				expected += w.layers * packedBytes(mk[0], mk[1]);
			}
			expected += packedBytes(w.vocab, w.hidden);
			packed = run(dir, b, expected);
			assertThat(b.packedBytes()).as("packed forms freed with the model").isZero();
			assertThat(b.liveBytes()).isEqualTo(before);
		}
		for (int i = 0; i < plain.size(); i++) {
			assertThat(packed.get(i).firstLogits()).as("prompt %d, first logits", i).containsExactly(plain.get(i).firstLogits());
			assertThat(packed.get(i).tokens()).as("prompt %d, tokens", i).containsExactly(plain.get(i).tokens());
		}
	}

	private static long packedBytes(long rows, long cols) {
		long words = (64 + (rows + 63) / 64 * 64 + rows * (16 + 96 * (cols / 64)) + 3) / 4;
		return words * 4;
	}

	private static List<OfflineGenerator.Result> run(Path dir, CpuBackend backend, long expectedPacked) {
		List<OfflineGenerator.Result> out = new ArrayList<>();
		try (LlamaModel m = LlamaModel.load(dir, backend, 0); KvCacheMemory cache = m.newKvCache(64, 8)) {
			assertThat(m.packedBytes()).isEqualTo(expectedPacked);
			assertThat(backend.packedBytes()).isEqualTo(expectedPacked);
			for (int token : new int[] { 5, 77, 150 }) {
				try (OfflineGenerator gen = new OfflineGenerator(m, cache, new KvCacheManager(new BlockPool(64, 8), false, "t"),
						OfflineGenerator.batchConfig(64), null, GenerationConfig.read(dir, m.config()))) {
					out.addAll(gen.generate(List.of(new int[] { token }), SamplingParams.greedy(24).toBuilder().ignoreEos(true).build()));
				}
			}
		}
		return out;
	}
}
