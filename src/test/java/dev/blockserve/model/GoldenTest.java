package dev.blockserve.model;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.TestDevice;
import dev.blockserve.support.SharedModels.GoldenCase;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every golden case of ../shared/models reproduces exactly: the greedy ids, and the first step's logits
 * within 1e-4, alone and all in one batch, at block sizes 1, 16 and 32 with shuffled physical blocks,
 * with chunked prefill, preempted in a small pool, and with prefix caching. Every run goes through
 * {@link OfflineGenerator}, that is the engine core with the production scheduler and KV manager.
 * <p>
 * The same runs with an F16 KV cache (blockserve.kv-cache.dtype=f16): the same greedy ids in every
 * configuration, and first-step logits within {@link #F16_CACHE_LOGIT_TOLERANCE} of the F32 reference
 * (keys and values rounded to F16 once when written; measured up to 0.025 on these models).
 */
class GoldenTest {

	/** Every shared model with goldens: Llama (real and random), Qwen2, Qwen3 and Mistral (sliding window). */
	static final List<String> MODELS = List.of("tiny-random-llama", "stories260K", "tiny-random-qwen2", "tiny-random-qwen3",
			"tiny-random-mistral");

	/** First-step logits of an F16 KV cache against the F32 reference: measured up to 0.025 here. */
	static final float F16_CACHE_LOGIT_TOLERANCE = 0.05f;

	/** F32 and F16, or the types {@code -Dblockserve.test.kv-cache-types} lists (CudaEmulatedGoldenTest: f32). */
	static final List<DType> CACHE_TYPES = java.util.Arrays
		.stream(System.getProperty("blockserve.test.kv-cache-types", "f32,f16").split(","))
		.map(t -> KvCacheMemory.parseType(t.trim()))
		.toList();

	static float logitTolerance(DType kvType) {
		return kvType == DType.F32 ? 1e-4f : F16_CACHE_LOGIT_TOLERANCE;
	}

	static Stream<Arguments> layouts() {
		List<Arguments> a = new ArrayList<>();
		for (DType kvType : CACHE_TYPES) {
			for (String model : MODELS) {
				for (int blockSize : new int[] { 1, 16, 32 }) {
					a.add(Arguments.of(model, blockSize, false, Integer.MAX_VALUE, kvType));
					a.add(Arguments.of(model, blockSize, true, Integer.MAX_VALUE, kvType));
				}
				a.add(Arguments.of(model, 16, true, 3, kvType)); // chunked prefill: 3 prompt tokens per step
			}
		}
		return a.stream();
	}

	static Stream<Arguments> modelsAndCacheTypes() {
		return CACHE_TYPES.stream().flatMap(t -> MODELS.stream().map(m -> Arguments.of(m, t)));
	}

	/** The golden run's parameters: greedy, stories260K stopping at EOS, the random model ignoring it. */
	static SamplingParams params(String model, int maxNew) {
		return SamplingParams.greedy(maxNew).toBuilder().ignoreEos(!model.equals("stories260K")).build();
	}

	static OfflineGenerator generator(String model, LlamaModel m, KvCacheMemory cache, KvCacheManager kv, int chunk) {
		return new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(chunk), null,
				GenerationConfig.read(SharedModels.dir(model), m.config()));
	}

	@ParameterizedTest(name = "{0} blockSize={1} batched={2} chunk={3} cache={4}")
	@MethodSource("layouts")
	void reproducesGolden(String model, int blockSize, boolean batched, int chunk, DType kvType) {
		var dir = SharedModels.dir(model);
		List<GoldenCase> cases = SharedModels.golden(model);
		boolean stories = model.equals("stories260K");
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(dir, backend, 0)) {
			int maxNew = stories ? 96 : 24;
			int blocks = cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize, kvType)) {
				KvCacheManager source = new KvCacheManager(new BlockPool(blocks, blockSize, 31L * blockSize + (batched ? 1 : 2)),
						false, model, m.config().features().maxWindow());
				List<OfflineGenerator.Result> results = new ArrayList<>();
				List<OfflineGenerator.Result> ignoreEos = new ArrayList<>();
				SamplingParams noEos = SamplingParams.greedy(24).toBuilder().ignoreEos(true).build();
				try (OfflineGenerator gen = generator(model, m, cache, source, chunk)) {
					if (batched) {
						List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
						results.addAll(gen.generate(prompts, params(model, maxNew)));
						if (stories) {
							ignoreEos.addAll(gen.generate(prompts, noEos));
						}
					}
					else {
						for (GoldenCase c : cases) {
							results.add(gen.generate(List.of(c.promptIds()), params(model, maxNew)).get(0));
							if (stories) {
								ignoreEos.add(gen.generate(List.of(c.promptIds()), noEos).get(0));
							}
						}
					}
				}
				for (int i = 0; i < cases.size(); i++) {
					GoldenCase c = cases.get(i);
					assertThat(results.get(i).tokens()).as("greedy ids of case %d", i).containsExactly(c.greedyIds());
					assertLogitsClose(results.get(i).firstLogits(), c.firstStepLogits(), i, logitTolerance(kvType));
					if (stories) {
						assertThat(ignoreEos.get(i).tokens()).as("24 ids ignoring EOS, case %d", i)
								.containsExactly(c.greedyIdsIgnoreEos24());
					}
				}
				assertThat(source.pool().numFree()).as("blocks still held after generation").isEqualTo(blocks);
				source.checkInvariants();
			}
		}
	}

	/**
	 * All cases at once in a pool of 30 blocks of 4 tokens, far less than they need together: the scheduler
	 * preempts (by recompute) through the same path the server uses, and every case still comes out exact.
	 */
	@ParameterizedTest(name = "{0} in a 30-block pool, cache {1}")
	@MethodSource("modelsAndCacheTypes")
	void reproducesGoldenWhenPreempted(String model, DType kvType) {
		var dir = SharedModels.dir(model);
		List<GoldenCase> cases = SharedModels.golden(model);
		int maxNew = model.equals("stories260K") ? 96 : 24;
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(dir, backend, 0);
				KvCacheMemory cache = m.newKvCache(30, 4, kvType)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(30, 4, 99), false, model, m.config().features().maxWindow());
			try (OfflineGenerator gen = generator(model, m, cache, kv, 8)) {
				List<OfflineGenerator.Result> results = gen.generate(cases.stream().map(GoldenCase::promptIds).toList(),
						params(model, maxNew));
				assertThat(gen.preemptions()).as("preemptions in a 30-block pool").isPositive();
				for (int i = 0; i < cases.size(); i++) {
					assertThat(results.get(i).tokens()).as("greedy ids of case %d", i).containsExactly(cases.get(i).greedyIds());
					assertLogitsClose(results.get(i).firstLogits(), cases.get(i).firstStepLogits(), i, logitTolerance(kvType));
				}
			}
			assertThat(kv.pool().numFree()).isEqualTo(30);
			kv.checkInvariants();
		}
	}

	@ParameterizedTest(name = "{0} blockSize={1} prefix caching, cache {2}")
	@org.junit.jupiter.params.provider.CsvSource({ "tiny-random-llama,1,F32", "tiny-random-llama,4,F32", "stories260K,1,F32",
			"stories260K,4,F32", "stories260K,16,F32", "tiny-random-qwen2,4,F32", "tiny-random-qwen3,4,F32",
			"tiny-random-mistral,1,F32", "tiny-random-mistral,4,F32", "tiny-random-mistral,16,F32", "tiny-random-llama,4,F16",
			"stories260K,4,F16", "tiny-random-qwen2,4,F16", "tiny-random-qwen3,4,F16", "tiny-random-mistral,4,F16" })
	void reproducesGoldenWithPrefixCaching(String model, int blockSize, DType kvType) {
		var dir = SharedModels.dir(model);
		List<GoldenCase> cases = SharedModels.golden(model);
		boolean stories = model.equals("stories260K");
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(dir, backend, 0)) {
			int maxNew = stories ? 96 : 24;
			int blocks = 2 * cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize, kvType)) {
				KvCacheManager manager = new KvCacheManager(new BlockPool(blocks, blockSize, 77), true, model,
						m.config().features().maxWindow());
				try (OfflineGenerator gen = generator(model, m, cache, manager, 512)) {
					List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
					SamplingParams p = params(model, maxNew);
					// Case 0 first: its prompt and output become cached blocks that later prompts start with.
					List<OfflineGenerator.Result> all = new ArrayList<>(gen.generate(prompts.subList(0, 1), p));
					List<OfflineGenerator.Result> rest = gen.generate(prompts.subList(1, prompts.size()), p);
					all.addAll(rest);
					List<OfflineGenerator.Result> again = gen.generate(prompts, p);
					for (int i = 0; i < cases.size(); i++) {
						assertThat(all.get(i).tokens()).as("first pass, case %d", i).containsExactly(cases.get(i).greedyIds());
						assertThat(again.get(i).tokens()).as("second pass, case %d", i).containsExactly(cases.get(i).greedyIds());
						assertLogitsClose(again.get(i).firstLogits(), cases.get(i).firstStepLogits(), i,
								logitTolerance(kvType));
					}
					int hitsSecondPass = again.stream().mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum();
					assertThat(hitsSecondPass).as("prompt tokens served from the prefix cache on the second pass").isPositive();
					assertThat(manager.prefixHitTokens()).isEqualTo(
							rest.stream().mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum() + hitsSecondPass);
				}
				manager.checkInvariants();
				assertThat(manager.pool().numFree()).isEqualTo(blocks);
			}
		}
	}

	static void assertLogitsClose(float[] actual, float[] expected, int caseIndex) {
		assertLogitsClose(actual, expected, caseIndex, 1e-4f);
	}

	static void assertLogitsClose(float[] actual, float[] expected, int caseIndex, float tolerance) {
		assertThat(actual).hasSize(expected.length);
		float worst = 0;
		for (int j = 0; j < expected.length; j++) {
			worst = Math.max(worst, Math.abs(actual[j] - expected[j]));
		}
		assertThat(worst).as("max |logit - golden| of case %d", caseIndex).isLessThanOrEqualTo(tolerance);
	}
}
