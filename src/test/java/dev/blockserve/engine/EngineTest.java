package dev.blockserve.engine;

import dev.blockserve.support.EngineProbes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import reactor.core.publisher.Flux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The serving engine end to end on the real test models. */
class EngineTest {

	static CpuBackend backend;

	@BeforeAll
	static void open() {
		backend = new CpuBackend(0);
	}

	@AfterAll
	static void close() {
		assertThat(backend.liveBytes()).as("native memory leaked").isZero();
	}

	/** The collected output of one request: per choice, its ids, text and finish reason. */
	record Output(Map<Integer, int[]> ids, Map<Integer, String> text, Map<Integer, String> finish,
			List<GenerationEvent> events) {

		int[] ids0() {
			return ids.get(0);
		}
	}

	static Output collect(Flux<GenerationEvent> events) {
		List<GenerationEvent> all = events.collectList().block(Duration.ofSeconds(120));
		Map<Integer, List<Integer>> ids = new TreeMap<>();
		Map<Integer, StringBuilder> text = new TreeMap<>();
		Map<Integer, String> finish = new TreeMap<>();
		for (GenerationEvent e : all) {
			List<Integer> l = ids.computeIfAbsent(e.index(), k -> new ArrayList<>());
			for (int t : e.tokenIds()) {
				l.add(t);
			}
			text.computeIfAbsent(e.index(), k -> new StringBuilder()).append(e.text());
			if (e.finishReason() != null) {
				finish.put(e.index(), e.finishReason().openAi());
			}
		}
		Map<Integer, int[]> idArrays = new TreeMap<>();
		ids.forEach((k, v) -> idArrays.put(k, v.stream().mapToInt(Integer::intValue).toArray()));
		Map<Integer, String> texts = new TreeMap<>();
		text.forEach((k, v) -> texts.put(k, v.toString()));
		return new Output(idArrays, texts, finish, all);
	}

	static ModelRuntime runtime(String model, int numBlocks, int blockSize) {
		return new ModelRuntime(SharedModels.dir(model), backend, 0, blockSize, numBlocks, 0);
	}

	static SamplingParams goldenParams(String model) {
		return model.equals("stories260K") ? SamplingParams.greedy(96) : SamplingParams.greedy(24).toBuilder().ignoreEos(true).build();
	}

	enum Scenario {
		ALONE, CONCURRENT_64, PREEMPTION, CHUNKED_PREFILL_8, PREFIX_CACHING
	}

	@ParameterizedTest
	@ValueSource(strings = { "ALONE", "CONCURRENT_64", "PREEMPTION", "CHUNKED_PREFILL_8", "PREFIX_CACHING" })
	void greedyOutputIsGoldenInEveryScenario(String scenarioName) throws Exception {
		Scenario scenario = Scenario.valueOf(scenarioName);
		for (String model : List.of("stories260K", "tiny-random-llama")) {
			List<GoldenCase> cases = SharedModels.golden(model);
			int blocks = scenario == Scenario.PREEMPTION ? 30 : 2048;
			int blockSize = scenario == Scenario.PREFIX_CACHING ? 4 : 16;
			SchedulerConfig sc = switch (scenario) {
				case CHUNKED_PREFILL_8 -> new SchedulerConfig(64, 32, 8, SchedulerConfig.Policy.FCFS);
				default -> new SchedulerConfig(64, 2048, 0, SchedulerConfig.Policy.FCFS);
			};
			try (ModelRuntime rt = runtime(model, blocks, blockSize);
					Engine engine = new Engine(rt, new EngineConfig(sc, scenario == Scenario.PREFIX_CACHING), null)) {
				SamplingParams params = goldenParams(model);
				if (scenario == Scenario.ALONE) {
					for (GoldenCase c : cases) {
						Output o = collect(engine.submit(c.promptIds(), params, 0).events());
						assertGolden(model, c, o);
					}
				}
				else if (scenario == Scenario.PREFIX_CACHING) {
					// two waves: the second finds the first's prompts (and outputs) in the prefix cache
					for (int wave = 0; wave < 2; wave++) {
						List<Flux<GenerationEvent>> fluxes = new ArrayList<>();
						for (GoldenCase c : cases) {
							fluxes.add(engine.submit(c.promptIds(), params, 0).events());
						}
						for (int i = 0; i < cases.size(); i++) {
							assertGolden(model, cases.get(i), collect(fluxes.get(i)));
						}
					}
					assertThat(engine.<Long>inspect(c -> c.kv().prefixHitTokens()).longValue()).as(model + ": prefix cache hits").isPositive();
				}
				else {
					int count = 64;
					List<Flux<GenerationEvent>> fluxes = new ArrayList<>();
					for (int i = 0; i < count; i++) {
						fluxes.add(engine.submit(cases.get(i % cases.size()).promptIds(), params, 0).events());
					}
					List<Output> outs = Flux.fromIterable(fluxes).flatMapSequential(f -> Flux.just(collect(f)), 64)
						.collectList().block(Duration.ofSeconds(300));
					for (int i = 0; i < count; i++) {
						assertGolden(model, cases.get(i % cases.size()), outs.get(i));
					}
				}
				if (scenario == Scenario.PREEMPTION) {
					assertThat(engine.<Long>inspect(EngineCore::preemptions).longValue()).as(model + ": preemptions under a 30-block pool").isPositive();
				}
				EngineProbes.checkInvariants(engine);
				assertThat(EngineProbes.usedBlocks(engine)).as("blocks held after every request ended").isZero();
			}
		}
	}

	static void assertGolden(String model, GoldenCase c, Output o) {
		assertThat(o.ids0()).as(model + " prompt " + Arrays.toString(c.promptIds())).containsExactly(c.greedyIds());
		if (c.completionText() != null) {
			assertThat(o.text().get(0)).isEqualTo(c.completionText());
		}
	}

	@Test
	void seededSamplingIsReproducibleAcrossRunsAndBatchCompositions() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 512, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), true), null)) {
			int[] prompt = SharedModels.golden("stories260K").get(1).promptIds();
			SamplingParams p = SamplingParams.builder().maxTokens(40).temperature(0.9).topK(40).topP(0.95).minP(0.02)
				.presencePenalty(0.1).frequencyPenalty(0.1).repetitionPenalty(1.1).seed(1234L).ignoreEos(true).build();
			int[] alone = collect(engine.submit(prompt, p, 0).events()).ids0();
			int[] again = collect(engine.submit(prompt, p, 0).events()).ids0();
			// the same request among 12 others of different lengths and seeds
			List<Flux<GenerationEvent>> noise = new ArrayList<>();
			for (int i = 0; i < 12; i++) {
				noise.add(engine.submit(new int[] { 1, 300 + i, 301 + i }, p.toBuilder().seed((long) i).build(), 0).events());
			}
			Flux<GenerationEvent> mixed = engine.submit(prompt, p, 0).events();
			for (Flux<GenerationEvent> f : noise) {
				collect(f);
			}
			int[] inBatch = collect(mixed).ids0();
			assertThat(alone).hasSize(40);
			assertThat(again).containsExactly(alone);
			assertThat(inBatch).containsExactly(alone);
			int[] otherSeed = collect(engine.submit(prompt, p.toBuilder().seed(99L).build(), 0).events()).ids0();
			assertThat(otherSeed).isNotEqualTo(alone);
		}
	}

	@Test
	void abortFreesTheRequestsBlocksWithinAStep() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			var sub = engine.submit(new int[] { 1 }, SamplingParams.greedy(500).toBuilder().ignoreEos(true).build(), 0);
			List<GenerationEvent> events = new ArrayList<>();
			var done = new java.util.concurrent.CountDownLatch(1);
			var fiveTokens = new java.util.concurrent.CountDownLatch(5);
			sub.events().doOnNext(e -> {
				events.add(e);
				fiveTokens.countDown();
			}).doOnTerminate(done::countDown).subscribe();
			assertThat(fiveTokens.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
			assertThat(EngineProbes.usedBlocks(engine)).isPositive();
			engine.abort(sub.id());
			assertThat(done.await(5, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
			assertThat(EngineProbes.usedBlocks(engine)).as("blocks after abort").isZero();
			GenerationEvent last = events.get(events.size() - 1);
			assertThat(last.finishReason()).isEqualTo(FinishReason.ABORT);
			assertThat(last.completionTokens()).isLessThan(500);
			EngineProbes.checkInvariants(engine);
		}
	}

	@Test
	void cancellingTheStreamAbortsTheRequest() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			var sub = engine.submit(new int[] { 1 }, SamplingParams.greedy(500).toBuilder().ignoreEos(true).build(), 0);
			List<GenerationEvent> first = sub.events().take(3).collectList().block(Duration.ofSeconds(30));
			assertThat(first).hasSize(3);
			long deadline = System.nanoTime() + 2_000_000_000L;
			while (EngineProbes.usedBlocks(engine) > 0 && System.nanoTime() < deadline) {
				Thread.sleep(10);
			}
			assertThat(EngineProbes.usedBlocks(engine)).isZero();
		}
	}

	@Test
	void nSiblingsShareThePromptAndDiverge() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 4);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), true), null)) {
			GoldenCase c = SharedModels.golden("stories260K").get(2);
			Output greedy = collect(engine.submit(c.promptIds(), SamplingParams.greedy(96).toBuilder().n(2).build(), 0).events());
			assertThat(greedy.ids()).hasSize(2);
			assertThat(greedy.ids().get(0)).containsExactly(c.greedyIds());
			assertThat(greedy.ids().get(1)).containsExactly(c.greedyIds());
			SamplingParams sampled = SamplingParams.builder().n(3).maxTokens(30).seed(7L).ignoreEos(true).build();
			Output three = collect(engine.submit(c.promptIds(), sampled, 0).events());
			assertThat(three.ids()).hasSize(3);
			assertThat(three.finish().values()).containsOnly("length");
			assertThat(three.ids().get(0)).isNotEqualTo(three.ids().get(1));
			Output threeAgain = collect(engine.submit(c.promptIds(), sampled, 0).events());
			for (int i = 0; i < 3; i++) {
				assertThat(threeAgain.ids().get(i)).containsExactly(three.ids().get(i));
			}
			EngineProbes.checkInvariants(engine);
			assertThat(EngineProbes.usedBlocks(engine)).isZero();
		}
	}

	@Test
	void stopStringEndsGenerationAndIsNotReturned() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			GoldenCase c = SharedModels.golden("stories260K").get(0);
			String full = c.completionText();
			String stop = "girl named"; // spans tokens
			Output o = collect(engine.submit(c.promptIds(), SamplingParams.greedy(96).toBuilder().stop(List.of(stop)).build(), 0).events());
			assertThat(o.finish().get(0)).isEqualTo("stop");
			assertThat(o.text().get(0)).isEqualTo(full.substring(0, full.indexOf(stop)));
		}
	}

	@Test
	void logprobsDescribeTheRawDistribution() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			GoldenCase c = SharedModels.golden("stories260K").get(1);
			Output o = collect(engine.submit(c.promptIds(), SamplingParams.greedy(3).toBuilder().logprobs(5).build(), 0).events());
			GenerationEvent.TokenLogprob first = o.events().get(0).logprobs().get(0);
			assertThat(first.token()).isEqualTo(c.greedyIds()[0]);
			assertThat(first.topTokens()[0]).isEqualTo(first.token());
			// from the golden logits: log softmax of the chosen token
			assertThat((double) first.logprob()).isCloseTo(SharedModels.logSoftmax(c.firstStepLogits(), first.token()),
					org.assertj.core.data.Offset.offset(1e-3));
			assertThat(first.topLogprobs()).hasSize(5).isSortedAccordingTo((a, b) -> Float.compare(b, a));
		}
	}

	@Test
	void withoutMaxTokensGenerationStopsAtTheContextLength() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 256, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			int[] prompt = new int[505];
			java.util.Arrays.fill(prompt, 300);
			prompt[0] = 1;
			Output o = collect(engine.submit(prompt, SamplingParams.greedy(0).toBuilder().ignoreEos(true).build(), 0).events());
			assertThat(o.ids0()).hasSize(7);
			assertThat(o.finish().get(0)).isEqualTo("length");
			assertThat(EngineProbes.usedBlocks(engine)).isZero();
		}
	}

	@Test
	void impossibleRequestsAreRejectedUpFront() {
		try (ModelRuntime rt = runtime("stories260K", 8, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			assertThatThrownBy(() -> engine.submit(new int[500], SamplingParams.greedy(20), 0))
				.hasMessageContaining("maximum context length is 512").hasMessageContaining("520 tokens");
			assertThatThrownBy(() -> engine.submit(new int[] { 1 }, SamplingParams.greedy(200), 0))
				.hasMessageContaining("cache holds only 8");
			assertThatThrownBy(() -> engine.submit(new int[0], SamplingParams.greedy(2), 0)).hasMessageContaining("at least one");
			assertThatThrownBy(() -> engine.submit(new int[] { 9999 }, SamplingParams.greedy(2), 0))
				.hasMessageContaining("outside the vocabulary");
			assertThatThrownBy(() -> engine.submit(new int[] { 1 },
					SamplingParams.greedy(2).toBuilder().badWords(new int[][] { { 5, 9999 } }).build(), 0))
				.hasMessageContaining("bad_words: token id 9999 is outside the vocabulary");
		}
	}
}
