package dev.blockserve.model;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.scheduler.SpeculativeConfig;
import dev.blockserve.support.DraftCounter;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.TestDevice;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Speculative decoding by prompt lookup changes how many steps a greedy output takes, never the output:
 * every golden case of every shared model comes out exact with drafts verified in the step, alone and
 * batched, at block sizes 1 and 16 (shuffled blocks), in a pool so small that the scheduler preempts, and
 * with prefix caching. Each run also counts the drafts: a run in which none was proposed or none accepted
 * would not have tested the verification at all, and fails.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class SpeculativeGoldenTest {

	/** Drafts of up to 4 tokens by lookup of 1 to 3 tokens (short lookups propose often), at any batch size. */
	static final SpeculativeConfig SPECULATIVE = new SpeculativeConfig(4, 1, 3, 256);

	static Stream<Arguments> layouts() {
		List<Arguments> a = new ArrayList<>();
		for (String model : GoldenTest.MODELS) {
			for (int blockSize : new int[] { 1, 16 }) {
				a.add(Arguments.of(model, blockSize, false));
				a.add(Arguments.of(model, blockSize, true));
			}
		}
		return a.stream();
	}

	static OfflineGenerator generator(String model, LlamaModel m, KvCacheMemory cache, KvCacheManager kv, int chunk,
			DraftCounter drafts) {
		SchedulerConfig config = OfflineGenerator.batchConfig(chunk).withSpeculative(SPECULATIVE);
		return new OfflineGenerator(m, cache, kv, config, null, GenerationConfig.read(SharedModels.dir(model), m.config()),
				drafts);
	}

	@ParameterizedTest(name = "{0} blockSize={1} batched={2}")
	@MethodSource("layouts")
	void reproducesGoldenWhileSpeculating(String model, int blockSize, boolean batched) {
		List<GoldenCase> cases = SharedModels.golden(model);
		boolean stories = model.equals("stories260K");
		DraftCounter drafts = new DraftCounter();
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0)) {
			int maxNew = stories ? 96 : 24;
			int blocks = cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize, DType.F32)) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize, 41L * blockSize + (batched ? 1 : 2)),
						false, model, m.config().features().maxWindow());
				List<OfflineGenerator.Result> results = new ArrayList<>();
				List<OfflineGenerator.Result> ignoreEos = new ArrayList<>();
				SamplingParams noEos = SamplingParams.greedy(24).toBuilder().ignoreEos(true).build();
				try (OfflineGenerator gen = generator(model, m, cache, kv, Integer.MAX_VALUE, drafts)) {
					List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
					for (List<int[]> group : batched ? List.of(prompts) : prompts.stream().map(List::of).toList()) {
						results.addAll(gen.generate(group, GoldenTest.params(model, maxNew)));
						if (stories) {
							ignoreEos.addAll(gen.generate(group, noEos));
						}
					}
				}
				for (int i = 0; i < cases.size(); i++) {
					GoldenCase c = cases.get(i);
					assertThat(results.get(i).tokens()).as("greedy ids of case %d", i).containsExactly(c.greedyIds());
					GoldenTest.assertLogitsClose(results.get(i).firstLogits(), c.firstStepLogits(), i);
					if (stories) {
						assertThat(ignoreEos.get(i).tokens()).as("24 ids ignoring EOS, case %d", i)
							.containsExactly(c.greedyIdsIgnoreEos24());
					}
				}
				assertThat(kv.pool().numFree()).as("blocks still held after generation").isEqualTo(blocks);
				kv.checkInvariants();
			}
		}
		assertThat(drafts.drafted).as("draft tokens verified").isPositive();
		assertThat(drafts.accepted).as("draft tokens accepted").isPositive();
		System.out.printf("speculative %s block %d batched %s: %d drafted, %d accepted%n", model, blockSize, batched,
				drafts.drafted, drafts.accepted);
	}

	/** All cases at once in 30 blocks of 4 tokens: drafts are dropped before anyone is preempted, and preemption still comes. */
	@ParameterizedTest(name = "{0} in a 30-block pool")
	@MethodSource("dev.blockserve.model.GoldenTest#modelsAndCacheTypes")
	void reproducesGoldenWhenPreempted(String model, DType kvType) {
		if (kvType != DType.F32) {
			return; // the cache types are GoldenTest's concern; one is enough here
		}
		List<GoldenCase> cases = SharedModels.golden(model);
		int maxNew = model.equals("stories260K") ? 96 : 24;
		DraftCounter drafts = new DraftCounter();
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0);
				KvCacheMemory cache = m.newKvCache(30, 4, kvType)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(30, 4, 99), false, model, m.config().features().maxWindow());
			try (OfflineGenerator gen = generator(model, m, cache, kv, 8, drafts)) {
				List<OfflineGenerator.Result> results = gen.generate(cases.stream().map(GoldenCase::promptIds).toList(),
						GoldenTest.params(model, maxNew));
				assertThat(gen.preemptions()).as("preemptions in a 30-block pool").isPositive();
				for (int i = 0; i < cases.size(); i++) {
					assertThat(results.get(i).tokens()).as("greedy ids of case %d", i).containsExactly(cases.get(i).greedyIds());
				}
			}
			assertThat(kv.pool().numFree()).isEqualTo(30);
			kv.checkInvariants();
		}
		assertThat(drafts.accepted).as("draft tokens accepted").isPositive();
	}

	/** Cached prefixes written by speculating sequences serve later prompts exactly (only verified tokens are hashed). */
	@ParameterizedTest(name = "{0} prefix caching")
	@MethodSource("dev.blockserve.model.GoldenTest#modelsAndCacheTypes")
	void reproducesGoldenWithPrefixCaching(String model, DType kvType) {
		if (kvType != DType.F32) {
			return;
		}
		List<GoldenCase> cases = SharedModels.golden(model);
		int maxNew = model.equals("stories260K") ? 96 : 24;
		DraftCounter drafts = new DraftCounter();
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0)) {
			int blocks = 2 * cases.size() * ((m.maxPositions() + 3) / 4);
			try (KvCacheMemory cache = m.newKvCache(blocks, 4, kvType)) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, 4, 77), true, model, m.config().features().maxWindow());
				try (OfflineGenerator gen = generator(model, m, cache, kv, 512, drafts)) {
					List<int[]> prompts = cases.stream().map(GoldenCase::promptIds).toList();
					SamplingParams p = GoldenTest.params(model, maxNew);
					List<OfflineGenerator.Result> first = gen.generate(prompts, p);
					// each prompt followed by its own output: the whole prompt is cached, written while speculating
					List<int[]> extended = new ArrayList<>();
					for (int i = 0; i < cases.size(); i++) {
						int[] a = prompts.get(i), b = first.get(i).tokens();
						int[] e = java.util.Arrays.copyOf(a, a.length + b.length - 1);
						System.arraycopy(b, 0, e, a.length, b.length - 1);
						extended.add(e);
					}
					List<OfflineGenerator.Result> again = gen.generate(extended, SamplingParams.greedy(1).toBuilder().ignoreEos(true).build());
					for (int i = 0; i < cases.size(); i++) {
						int[] golden = cases.get(i).greedyIds();
						assertThat(first.get(i).tokens()).as("case %d", i).containsExactly(golden);
						if (golden.length > 1) {
							assertThat(again.get(i).tokens()).as("case %d continued from the cache", i)
								.containsExactly(golden[golden.length - 1]);
						}
					}
					assertThat(again.stream().mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum())
						.as("prompt tokens served from blocks written while speculating").isPositive();
				}
				kv.checkInvariants();
				assertThat(kv.pool().numFree()).isEqualTo(blocks);
			}
		}
		assertThat(drafts.accepted).as("draft tokens accepted").isPositive();
	}
}
