package dev.blockserve.model;

import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.ModelRuntime;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import dev.blockserve.backend.WeightType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The 16-bit KV caches at model level. F16 runs every golden configuration with the same ids (in
 * {@link GoldenTest}); BF16 keeps 8 bits of mantissa where F16 keeps 11, and on these small models it
 * changes later greedy ids of some cases (measured: 4 of 9 cases of tiny-random-llama and 4 of 6 of
 * stories260K stay whole), so it is checked by tolerance: first-step logits near the reference and the
 * first greedy token the same in every case. Sizing: the same tokens in half the bytes.
 */
class KvCacheTypeTest {

	/** First-step logits of a BF16 cache against the F32 reference: measured up to 0.243 on these models. */
	static final float BF16_CACHE_LOGIT_TOLERANCE = 0.4f;

	static List<String> models() {
		return GoldenTest.MODELS;
	}

	@ParameterizedTest
	@MethodSource("models")
	void aBf16CacheStaysCloseToTheReference(String model) {
		List<GoldenCase> cases = SharedModels.golden(model);
		int blockSize = 16;
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0)) {
			int blocks = cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize, DType.BF16)) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize, 5), false, model,
						m.config().features().maxWindow());
				List<OfflineGenerator.Result> results;
				try (OfflineGenerator gen = GoldenTest.generator(model, m, cache, kv, Integer.MAX_VALUE)) {
					results = gen.generate(cases.stream().map(GoldenCase::promptIds).toList(), GoldenTest.params(model, 4));
				}
				for (int i = 0; i < cases.size(); i++) {
					GoldenTest.assertLogitsClose(results.get(i).firstLogits(), cases.get(i).firstStepLogits(), i,
							BF16_CACHE_LOGIT_TOLERANCE);
					assertThat(results.get(i).tokens()[0]).as("first greedy id of case %d", i)
						.isEqualTo(cases.get(i).greedyIds()[0]);
				}
				assertThat(kv.pool().numFree()).isEqualTo(blocks);
			}
		}
	}

	/** Sized to the model, a 16-bit cache holds the same tokens as an F32 one in half the bytes. */
	@Test
	void aSixteenBitCacheHoldsTheSameTokensInHalfTheBytes() {
		var dir = SharedModels.dir("stories260K");
		try (CpuBackend backend = new CpuBackend(0);
				ModelRuntime f32 = new ModelRuntime(dir, "s", backend, 0, 16, 0, -1, 0.9, WeightType.AUTO, DType.F32);
				ModelRuntime f16 = new ModelRuntime(dir, "s", backend, 0, 16, 0, -1, 0.9, WeightType.AUTO, DType.F16)) {
			assertThat(f16.cache().numBlocks()).isEqualTo(f32.cache().numBlocks());
			assertThat(f16.cache().bytes() * 2).isEqualTo(f32.cache().bytes());
			assertThat(f16.cache().dtype()).isEqualTo(DType.F16);
			// a given budget holds twice the blocks
			try (ModelRuntime budget = new ModelRuntime(dir, "s", backend, 0, 16, 0, 1 << 20, 0.9, WeightType.AUTO,
					DType.BF16)) {
				assertThat(budget.cache().numBlocks())
					.isEqualTo((int) ((1 << 20) / KvCacheMemory.bytesPerBlock(5, 16, 4, 8, DType.BF16)))
					.isEqualTo(2 * (int) ((1 << 20) / KvCacheMemory.bytesPerBlock(5, 16, 4, 8, DType.F32)));
			}
		}
	}
}
