package dev.blockserve.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import reactor.core.publisher.Flux;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Prompt logprobs (OpenAI's echo with logprobs): the logprob of every prompt token given the ones before
 * it. Checked against the independent reference's logits (the golden prompt followed by its first greedy
 * token: that token's entry is the log softmax of the golden first-step logits), against the ordinary
 * decode path (a prefix of the prompt with its next prompt token forced by logit_bias reports the same
 * raw logprob), and the same in every configuration the goldens run in.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class PromptLogprobsTest {

	static final int TOP = 3;

	static CpuBackend backend;

	@BeforeAll
	static void open() {
		backend = new CpuBackend(0);
	}

	@AfterAll
	static void close() {
		assertThat(backend.liveBytes()).as("native memory leaked").isZero();
	}

	static ModelRuntime runtime(String model, int numBlocks, int blockSize) {
		return new ModelRuntime(SharedModels.dir(model), backend, 0, blockSize, numBlocks, 0);
	}

	/** The golden prompt followed by its first greedy token. */
	static int[] prompt(GoldenCase c) {
		int[] p = Arrays.copyOf(c.promptIds(), c.promptIds().length + 1);
		p[p.length - 1] = c.greedyIds()[0];
		return p;
	}

	static SamplingParams params(String model) {
		return EngineTest.goldenParams(model).toBuilder().maxTokens(6).promptLogprobs(TOP).build();
	}

	static List<GenerationEvent.TokenLogprob> promptLogprobs(EngineTest.Output o, int choice) {
		List<GenerationEvent.TokenLogprob> found = null;
		for (GenerationEvent e : o.events()) {
			if (e.index() == choice && e.promptLogprobs() != null) {
				assertThat(found).as("prompt logprobs come once per choice").isNull();
				found = e.promptLogprobs();
			}
		}
		assertThat(found).as("choice " + choice + " carries prompt logprobs").isNotNull();
		return found;
	}

	/** Entries one per prompt token, the first without a logprob, and the last from the reference's logits. */
	static void assertAgainstReference(GoldenCase c, int[] prompt, List<GenerationEvent.TokenLogprob> lps) {
		assertThat(lps).hasSize(prompt.length).doesNotContainNull();
		assertThat(lps.get(0).logprob()).isNaN();
		for (int j = 0; j < prompt.length; j++) {
			assertThat(lps.get(j).token()).isEqualTo(prompt[j]);
		}
		for (int j = 1; j < prompt.length; j++) {
			GenerationEvent.TokenLogprob lp = lps.get(j);
			assertThat(lp.logprob()).isLessThanOrEqualTo(0f);
			assertThat(lp.topTokens()).hasSize(TOP);
			assertThat(lp.topLogprobs()[0]).isGreaterThanOrEqualTo(lp.logprob());
		}
		GenerationEvent.TokenLogprob last = lps.get(prompt.length - 1);
		float[] ref = c.firstStepLogits();
		assertThat((double) last.logprob()).isCloseTo(SharedModels.logSoftmax(ref, prompt[prompt.length - 1]), Offset.offset(1e-4));
		// the golden's first token is its greedy one: the top alternative
		assertThat(last.topTokens()[0]).isEqualTo(c.greedyIds()[0]);
		for (int k = 0; k < TOP; k++) {
			assertThat((double) last.topLogprobs()[k]).isCloseTo(SharedModels.logSoftmax(ref, last.topTokens()[k]), Offset.offset(1e-4));
		}
	}

	static void assertSame(List<GenerationEvent.TokenLogprob> a, List<GenerationEvent.TokenLogprob> b, String what) {
		assertThat(b).as(what).hasSize(a.size());
		for (int j = 1; j < a.size(); j++) {
			assertThat(b.get(j).token()).as(what).isEqualTo(a.get(j).token());
			assertThat(b.get(j).text()).as(what).isEqualTo(a.get(j).text());
			assertThat(b.get(j).logprob()).as(what + " position " + j).isCloseTo(a.get(j).logprob(), Offset.offset(1e-4f));
		}
	}

	@Test
	void matchTheReferenceAndTheDecodePath() throws Exception {
		for (String model : List.of("stories260K", "tiny-random-llama", "tiny-random-qwen3", "tiny-random-mistral")) {
			try (ModelRuntime rt = runtime(model, 512, 16);
					Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
				GoldenCase c = SharedModels.golden(model).get(0);
				int[] prompt = prompt(c);
				EngineTest.Output o = EngineTest.collect(engine.submit(prompt, params(model), 0).events());
				List<GenerationEvent.TokenLogprob> lps = promptLogprobs(o, 0);
				assertAgainstReference(c, prompt, lps);
				assertThat(o.ids0()).as("decoding goes on as the golden").containsExactly(Arrays.copyOfRange(c.greedyIds(), 1, 7));
				// the decode path's raw logprob of the same token after the same prefix
				for (int j : new int[] { 1, prompt.length / 2, prompt.length - 2 }) {
					if (j < 1) {
						continue;
					}
					SamplingParams forced = SamplingParams.greedy(1).toBuilder().logprobs(0)
						.logitBias(SamplingParams.LogitBias.of(java.util.Map.of(prompt[j], 100))).build();
					GenerationEvent.TokenLogprob viaDecode = EngineTest
						.collect(engine.submit(Arrays.copyOf(prompt, j), forced, 0).events()).events().get(0).logprobs().get(0);
					assertThat(viaDecode.token()).isEqualTo(prompt[j]);
					assertThat(lps.get(j).logprob()).as(model + " position " + j).isCloseTo(viaDecode.logprob(), Offset.offset(1e-4f));
				}
			}
		}
	}

	/**
	 * A prompt longer than one pass of the LM head over prompt rows ({@code LlamaModel.tokenLogitsRows()}):
	 * the golden's 64-token prompt followed by its 24 greedy tokens. Each of those is the argmax after the
	 * ones before it (rank 1), and positions on both sides of a pass boundary match the decode path.
	 */
	@Test
	void longerThanOnePassOfPromptRows() throws Exception {
		String model = "tiny-random-llama";
		GoldenCase c = SharedModels.golden(model).get(8); // its 64-token prompt
		int[] prompt = java.util.stream.IntStream.concat(Arrays.stream(c.promptIds()), Arrays.stream(c.greedyIds())).toArray();
		assertThat(prompt.length).isGreaterThan(dev.blockserve.model.LlamaModel.tokenLogitsRows() + 1);
		try (ModelRuntime rt = runtime(model, 512, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			List<GenerationEvent.TokenLogprob> lps = promptLogprobs(
					EngineTest.collect(engine.submit(prompt, params(model), 0).events()), 0);
			assertThat(lps).hasSize(prompt.length).doesNotContainNull();
			for (int j = c.promptIds().length; j < prompt.length; j++) {
				assertThat(lps.get(j).rank()).as("greedy token at %d", j).isEqualTo(1);
				assertThat(lps.get(j).topTokens()[0]).isEqualTo(prompt[j]);
			}
			int pass = dev.blockserve.model.LlamaModel.tokenLogitsRows();
			for (int j : new int[] { 1, pass - 1, pass, pass + 1, pass + 2, prompt.length - 1 }) {
				SamplingParams forced = SamplingParams.greedy(1).toBuilder().logprobs(0)
					.logitBias(SamplingParams.LogitBias.of(java.util.Map.of(prompt[j], 100))).build();
				float viaDecode = EngineTest.collect(engine.submit(Arrays.copyOf(prompt, j), forced, 0).events()).events().get(0)
					.logprobs().get(0).logprob();
				assertThat(lps.get(j).logprob()).as("position " + j).isCloseTo(viaDecode, Offset.offset(1e-4f));
			}
		}
	}

	/** A one-token prompt has one entry, the token without a logprob (it made the response fail with a null entry). */
	@Test
	void aOneTokenPrompt() throws Exception {
		try (ModelRuntime rt = runtime("stories260K", 64, 16);
				Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
			List<GenerationEvent.TokenLogprob> lps = promptLogprobs(
					EngineTest.collect(engine.submit(new int[] { 1 }, params("stories260K"), 0).events()), 0);
			assertThat(lps).hasSize(1).doesNotContainNull();
			assertThat(lps.get(0).token()).isEqualTo(1);
			assertThat(lps.get(0).logprob()).isNaN();
		}
	}

	enum Scenario {
		BATCHED, PREEMPTION, CHUNKED_PREFILL_8, PREFIX_CACHING, BLOCK_SIZE_1
	}

	/**
	 * The same entries in every configuration, and none twice: a preempted sequence recomputes its prompt
	 * without reporting it again, and a prompt whose blocks are cached is still computed whole.
	 */
	@ParameterizedTest
	@ValueSource(strings = { "BATCHED", "PREEMPTION", "CHUNKED_PREFILL_8", "PREFIX_CACHING", "BLOCK_SIZE_1" })
	void sameInEveryConfiguration(String scenarioName) throws Exception {
		Scenario scenario = Scenario.valueOf(scenarioName);
		for (String model : List.of("stories260K", "tiny-random-llama")) {
			List<GoldenCase> cases = SharedModels.golden(model);
			List<List<GenerationEvent.TokenLogprob>> alone = new ArrayList<>();
			try (ModelRuntime rt = runtime(model, 512, 16);
					Engine engine = new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false), null)) {
				for (GoldenCase c : cases) {
					alone.add(promptLogprobs(EngineTest.collect(engine.submit(prompt(c), params(model), 0).events()), 0));
				}
			}
			SchedulerConfig sc = scenario == Scenario.CHUNKED_PREFILL_8 ? new SchedulerConfig(64, 32, 8, SchedulerConfig.Policy.FCFS)
					: new SchedulerConfig(64, 2048, 0, SchedulerConfig.Policy.FCFS);
			// under preemption: a pool of 12 blocks that the admitted requests fill, and 20 new tokens each, so
			// running sequences outgrow it
			int blocks = scenario == Scenario.PREEMPTION ? 12 : scenario == Scenario.BLOCK_SIZE_1 ? 4096 : 2048;
			int newTokens = scenario == Scenario.PREEMPTION ? 20 : 6;
			int blockSize = scenario == Scenario.PREFIX_CACHING ? 4 : scenario == Scenario.BLOCK_SIZE_1 ? 1 : 16;
			try (ModelRuntime rt = runtime(model, blocks, blockSize);
					Engine engine = new Engine(rt, new EngineConfig(sc, scenario == Scenario.PREFIX_CACHING), null)) {
				if (scenario == Scenario.PREFIX_CACHING) {
					// the same prompts without prompt logprobs first: their blocks are then in the cache
					for (GoldenCase c : cases) {
						EngineTest.collect(engine.submit(prompt(c), EngineTest.goldenParams(model).toBuilder().maxTokens(2).build(), 0).events());
					}
				}
				int copies = scenario == Scenario.PREEMPTION || scenario == Scenario.BATCHED ? 4 : 1;
				List<Flux<GenerationEvent>> fluxes = new ArrayList<>();
				for (int r = 0; r < copies; r++) {
					for (GoldenCase c : cases) {
						SamplingParams p = params(model).toBuilder().maxTokens(newTokens).build();
						fluxes.add(engine.submit(prompt(c), r == 1 ? p.toBuilder().n(2).temperature(0.8).seed(1L).build() : p, 0).events());
					}
				}
				for (int i = 0; i < fluxes.size(); i++) {
					GoldenCase c = cases.get(i % cases.size());
					EngineTest.Output o = EngineTest.collect(fluxes.get(i));
					String what = model + " " + scenario + " request " + i;
					List<GenerationEvent.TokenLogprob> lps = promptLogprobs(o, 0);
					assertAgainstReference(c, prompt(c), lps);
					assertSame(alone.get(i % cases.size()), lps, what);
					if (o.ids().size() == 2) {
						assertThat(promptLogprobs(o, 1)).as(what + ": both choices").containsExactlyElementsOf(lps);
					}
					else {
						assertThat(o.ids0()).as(what).containsExactly(Arrays.copyOfRange(c.greedyIds(), 1, 1 + newTokens));
					}
				}
				if (scenario == Scenario.PREEMPTION) {
					assertThat(engine.<Long>inspect(EngineCore::preemptions).longValue()).as(model + ": preemptions").isPositive();
				}
				EngineProbes.checkInvariants(engine);
				assertThat(EngineProbes.usedBlocks(engine)).as("blocks held after every request ended").isZero();
			}
		}
	}
}
