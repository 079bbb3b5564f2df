package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.SpeculativeConfig;
import dev.blockserve.support.DraftCounter;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Speculation ends an output at the same token as decoding one token a step: when a stop string, a stop
 * token, EOS, min_tokens or max_tokens falls inside a run of accepted drafts, the tokens after it are
 * dropped. Checked on stories260K (real text, real tokenizer, phrases that recur) against the same engine
 * without speculation, over every combination of those rules, greedy, sampled with seeds, and constrained.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class SpeculativeDecodingTest {

	static final SpeculativeConfig SPECULATIVE = new SpeculativeConfig(5, 1, 3, 64);

	/** Runs {@code body} on stories260K's tokenizer and a generator, speculating or not. */
	static <T> T withStories(boolean speculate, DraftCounter drafts, java.util.function.BiFunction<TextTokenizer, OfflineGenerator, T> body) {
		var dir = SharedModels.dir("stories260K");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0);
				TextTokenizer tok = TextTokenizer.load(dir); KvCacheMemory cache = m.newKvCache(512, 16)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(512, 16, 9), true, "stories260K", 0);
			var config = OfflineGenerator.batchConfig(64);
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, speculate ? config.withSpeculative(SPECULATIVE) : config,
					tok, GenerationConfig.read(dir, m.config()), drafts)) {
				T out = body.apply(tok, gen);
				kv.checkInvariants();
				return out;
			}
		}
	}

	record Outcome(List<Integer> tokens, String text, FinishReason reason) {
	}

	static List<SamplingParams> greedyVariants() {
		List<SamplingParams> all = new ArrayList<>();
		for (int maxTokens : new int[] { 1, 2, 3, 5, 8, 13, 21, 60, 150 }) {
			for (List<String> stop : List.of(List.<String>of(), List.of(" the"), List.of("."), List.of("Lily", "happy"),
					List.of("ed t"))) {
				for (boolean include : new boolean[] { false, true }) {
					for (boolean ignoreEos : new boolean[] { false, true }) {
						all.add(SamplingParams.greedy(maxTokens).toBuilder().stop(stop).includeStopStrInOutput(include)
							.ignoreEos(ignoreEos).minTokens(maxTokens > 8 && include ? 6 : 0)
							.stopTokenIds(ignoreEos && !include ? new int[] { 13 } : new int[0]).build());
					}
				}
			}
		}
		return all;
	}

	static List<Outcome> run(boolean speculate, DraftCounter drafts, List<String> texts, List<SamplingParams> variants) {
		return withStories(speculate, drafts, (tok, gen) -> {
			List<int[]> prompts = texts.stream().map(t -> tok.encode(t, true)).toList();
			List<Outcome> out = new ArrayList<>();
			for (SamplingParams p : variants) {
				var results = gen.generate(prompts, p);
				for (int i = 0; i < prompts.size(); i++) {
					var r = results.get(i);
					out.add(new Outcome(java.util.Arrays.stream(r.tokens()).boxed().toList(),
							tok.decodeContinuation(prompts.get(i), r.tokens()), r.finishReason()));
				}
			}
			return out;
		});
	}

	@Test
	void everyStopRuleEndsTheOutputAtTheSameTokenAsWithoutSpeculation() {
		List<String> texts = List.of("Once upon a time", "Lily and Tom went to the park. They", "The little dog was sad",
				"One day, a big cat saw a bird. The cat", "Tim had a red ball. He liked his ball. His ball");
		List<SamplingParams> variants = greedyVariants();
		DraftCounter drafts = new DraftCounter();
		List<Outcome> plain = run(false, new DraftCounter(), texts, variants);
		List<Outcome> speculated = run(true, drafts, texts, variants);
		assertThat(speculated).hasSameSizeAs(plain);
		for (int i = 0; i < plain.size(); i++) {
			assertThat(speculated.get(i)).as("variant %s, prompt %d", variants.get(i / texts.size()), i % texts.size())
				.isEqualTo(plain.get(i));
		}
		// the runs must have exercised what they check: stops of every kind inside accepted drafts
		assertThat(plain.stream().map(Outcome::reason).distinct()).contains(FinishReason.STOP, FinishReason.LENGTH);
		assertThat(drafts.accepted).as("accepted drafts (stories repeat phrases)").isGreaterThan(drafts.drafted / 10);
		System.out.printf("stories260K, %d outputs: %d drafted, %d accepted%n", plain.size(), drafts.drafted, drafts.accepted);
	}

	/**
	 * Sampled and constrained requests speculate too: each row makes its token as a plain step would (the
	 * same random stream, masks, penalties), and a draft is kept only when that token equals it. So a seeded
	 * request's output is the same with and without speculation, token for token, whatever shapes it.
	 */
	@Test
	void seededSampledAndConstrainedOutputsAreTheSameAsWithoutSpeculation() {
		List<Function<SamplingParams.Builder, SamplingParams.Builder>> kinds = List.of(b -> b.temperature(0.8).seed(1L),
				b -> b.temperature(1.0).topP(0.9).topK(40).seed(2L), b -> b.temperature(0.5).minP(0.1).seed(3L),
				b -> b.logprobs(2), b -> b.repetitionPenalty(1.3), b -> b.frequencyPenalty(0.5).presencePenalty(0.3),
				b -> b.logitBias(new SamplingParams.LogitBias(new int[] { 260, 300 }, new float[] { 2f, -5f })),
				b -> b.allowedTokenIds(new int[] { 1, 2, 3, 260, 300, 400 }).temperature(1.0).seed(4L),
				b -> b.minTokens(100).ignoreEos(false).temperature(0.9).seed(5L),
				b -> b.badWords(new int[][] { { 286 }, { 399, 393 } }),
				b -> b.grammar(dev.blockserve.constraint.RegexCompiler.compile("(Tim had a (red|big) ball\\. )+")).temperature(0.9)
					.seed(6L));
		List<String> texts = List.of("Tim had a red ball. He liked his ball.", "Once upon a time, there was a girl");
		long accepted = 0;
		for (var kind : kinds) {
			SamplingParams p = kind.apply(SamplingParams.greedy(120).toBuilder().ignoreEos(true)).build();
			DraftCounter drafts = new DraftCounter();
			List<Outcome> plain = run(false, new DraftCounter(), texts, List.of(p));
			List<Outcome> speculated = run(true, drafts, texts, List.of(p));
			assertThat(speculated).as("outputs of %s", p).isEqualTo(plain);
			assertThat(drafts.drafted).as("drafts for %s", p).isPositive();
			accepted += drafts.accepted;
		}
		assertThat(accepted).as("drafts kept over all kinds").isPositive();
	}

	/**
	 * A sampled sequence verifying 64 drafts downloads 65 logits rows in one step; a later step of more than 64
	 * sequences must still find room for each sequence's row index (the two buffers grow apart).
	 */
	@Test
	void manyDraftRowsThenManySequencesInLaterSteps() {
		var dir = SharedModels.dir("stories260K");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0);
				TextTokenizer tok = TextTokenizer.load(dir); KvCacheMemory cache = m.newKvCache(1024, 16)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(1024, 16, 9), false, "stories260K", 0);
			DraftCounter drafts = new DraftCounter();
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv,
					OfflineGenerator.batchConfig(64).withSpeculative(new SpeculativeConfig(64, 1, 3, 1)), tok,
					GenerationConfig.read(dir, m.config()), drafts)) {
				SamplingParams sampled = SamplingParams.builder().temperature(0.8).seed(3L).maxTokens(120).ignoreEos(true).build();
				gen.generate(List.of(tok.encode("Tim had a red ball. Tim had a red ball. Tim had a red ball.", true)), sampled);
				assertThat(drafts.drafted).as("drafts verified by the sampled sequence").isGreaterThanOrEqualTo(64);
				List<int[]> many = new ArrayList<>();
				for (int i = 0; i < 70; i++) {
					many.add(tok.encode("Once upon a time " + i, true));
				}
				var results = gen.generate(many, sampled.toBuilder().maxTokens(4).build());
				assertThat(results).hasSize(70).allSatisfy(r -> assertThat(r.tokens()).hasSize(4));
			}
			kv.checkInvariants();
		}
	}
}
