package dev.blockserve.model;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.support.SharedModels;
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
 * and with chunked prefill.
 */
class GoldenTest {

	static Stream<Arguments> layouts() {
		List<Arguments> a = new ArrayList<>();
		for (String model : List.of("tiny-random-llama", "stories260K")) {
			for (int blockSize : new int[] { 1, 16, 32 }) {
				a.add(Arguments.of(model, blockSize, false, Integer.MAX_VALUE));
				a.add(Arguments.of(model, blockSize, true, Integer.MAX_VALUE));
			}
			a.add(Arguments.of(model, 16, true, 3)); // chunked prefill: 3 prompt tokens per step
		}
		return a.stream();
	}

	@ParameterizedTest(name = "{0} blockSize={1} batched={2} chunk={3}")
	@MethodSource("layouts")
	void reproducesGolden(String model, int blockSize, boolean batched, int chunk) {
		var dir = SharedModels.dir(model);
		List<GoldenCase> cases = SharedModels.golden(model);
		boolean stories = model.equals("stories260K");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0)) {
			int maxNew = stories ? 96 : 24;
			int blocks = cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			int[] eos = stories ? GenerationConfig.read(dir, m.config()).eosTokenIds() : new int[0];
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize)) {
				KvCacheManager source = new KvCacheManager(new BlockPool(blocks, blockSize, 31L * blockSize + (batched ? 1 : 2)),
						false, model);
				OfflineGenerator gen = new OfflineGenerator(m, cache, source);
				List<OfflineGenerator.Result> results = new ArrayList<>();
				List<OfflineGenerator.Result> ignoreEos = new ArrayList<>();
				if (batched) {
					List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
					results.addAll(gen.generate(prompts, maxNew, eos, chunk));
					if (stories) {
						ignoreEos.addAll(gen.generate(prompts, 24, new int[0], chunk));
					}
				}
				else {
					for (GoldenCase c : cases) {
						results.add(gen.generate(List.of(c.promptIds()), maxNew, eos, chunk).get(0));
						if (stories) {
							ignoreEos.add(gen.generate(List.of(c.promptIds()), 24, new int[0], chunk).get(0));
						}
					}
				}
				for (int i = 0; i < cases.size(); i++) {
					GoldenCase c = cases.get(i);
					assertThat(results.get(i).tokens()).as("greedy ids of case %d", i).containsExactly(c.greedyIds());
					assertLogitsClose(results.get(i).firstLogits(), c.firstStepLogits(), i);
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

	@ParameterizedTest(name = "{0} blockSize={1} prefix caching")
	@org.junit.jupiter.params.provider.CsvSource({ "tiny-random-llama,1", "tiny-random-llama,4", "stories260K,1",
			"stories260K,4", "stories260K,16" })
	void reproducesGoldenWithPrefixCaching(String model, int blockSize) {
		var dir = SharedModels.dir(model);
		List<GoldenCase> cases = SharedModels.golden(model);
		boolean stories = model.equals("stories260K");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0)) {
			int maxNew = stories ? 96 : 24;
			int blocks = 2 * cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			int[] eos = stories ? GenerationConfig.read(dir, m.config()).eosTokenIds() : new int[0];
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize)) {
				KvCacheManager manager = new KvCacheManager(new BlockPool(blocks, blockSize, 77), true, model);
				OfflineGenerator gen = new OfflineGenerator(m, cache, manager);
				List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
				// Case 0 first: its prompt and output become cached blocks that later prompts start with.
				List<OfflineGenerator.Result> all = new ArrayList<>(gen.generate(prompts.subList(0, 1), maxNew, eos, 512));
				List<OfflineGenerator.Result> rest = gen.generate(prompts.subList(1, prompts.size()), maxNew, eos, 512);
				all.addAll(rest);
				List<OfflineGenerator.Result> again = gen.generate(prompts, maxNew, eos, 512);
				for (int i = 0; i < cases.size(); i++) {
					assertThat(all.get(i).tokens()).as("first pass, case %d", i).containsExactly(cases.get(i).greedyIds());
					assertThat(again.get(i).tokens()).as("second pass, case %d", i).containsExactly(cases.get(i).greedyIds());
					assertLogitsClose(again.get(i).firstLogits(), cases.get(i).firstStepLogits(), i);
				}
				int hitsSecondPass = again.stream().mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum();
				assertThat(hitsSecondPass).as("prompt tokens served from the prefix cache on the second pass").isPositive();
				assertThat(manager.prefixHitTokens()).isEqualTo(
						rest.stream().mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum() + hitsSecondPass);
				manager.checkInvariants();
				assertThat(manager.pool().numFree()).isEqualTo(blocks);
			}
		}
	}

	static void assertLogitsClose(float[] actual, float[] expected, int caseIndex) {
		assertThat(actual).hasSize(expected.length);
		float worst = 0;
		for (int j = 0; j < expected.length; j++) {
			worst = Math.max(worst, Math.abs(actual[j] - expected[j]));
		}
		assertThat(worst).as("max |logit - golden| of case %d", caseIndex).isLessThanOrEqualTo(1e-4f);
	}
}
