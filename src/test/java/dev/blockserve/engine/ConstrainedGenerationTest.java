package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.constraint.Grammar;
import dev.blockserve.constraint.JsonSchemaCompiler;
import dev.blockserve.constraint.SchemaOracle;
import dev.blockserve.constraint.Schemas;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Constrained generation through the engine core: a grammar's state survives preemption by recompute
 * (the same seeded outputs in a pool too small for the batch as in a large one), prefix caching does not
 * change it, and every finished output validates.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ConstrainedGenerationTest {

	static final String MODEL = "tiny-random-llama";

	List<OfflineGenerator.Result> run(int blocks, int blockSize, boolean prefixCaching, List<int[]> prompts,
			SamplingParams p, long[] preemptions, int passes) {
		var dir = SharedModels.dir(MODEL);
		List<OfflineGenerator.Result> out = new ArrayList<>();
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0);
				TextTokenizer tok = TextTokenizer.load(dir); KvCacheMemory cache = m.newKvCache(blocks, blockSize)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize, 5), prefixCaching, MODEL, 0);
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(64), tok,
					GenerationConfig.read(dir, m.config()))) {
				for (int i = 0; i < passes; i++) {
					out.addAll(gen.generate(prompts, p));
				}
				preemptions[0] = gen.preemptions();
			}
			assertThat(kv.pool().numFree()).isEqualTo(blocks);
			kv.checkInvariants();
		}
		return out;
	}

	@Test
	void grammarStateSurvivesPreemptionAndPrefixCaching() {
		var dir = SharedModels.dir(MODEL);
		List<int[]> prompts = new ArrayList<>();
		try (TextTokenizer tok = TextTokenizer.load(dir)) {
			for (int i = 0; i < 12; i++) {
				prompts.add(tok.encode("Order number " + i + " as JSON, please: ", false));
			}
		}
		String schema = Schemas.TEN.get(5);
		Grammar g = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree(schema));
		SamplingParams p = SamplingParams.builder().temperature(0).maxTokens(120).grammar(g).build();
		long[] pre = new long[1];
		List<OfflineGenerator.Result> roomy = run(12 * 32, 16, false, prompts, p, pre, 1);
		assertThat(pre[0]).isZero();
		List<OfflineGenerator.Result> tight = run(40, 4, false, prompts, p, pre, 1);
		assertThat(pre[0]).as("preemptions in a 40-block pool").isPositive();
		List<OfflineGenerator.Result> cached = run(12 * 64, 16, true, prompts, p, pre, 2);
		SchemaOracle oracle = new SchemaOracle(schema);
		int stopped = 0;
		try (TextTokenizer tok = TextTokenizer.load(dir)) {
			for (int i = 0; i < prompts.size(); i++) {
				int[] ids = roomy.get(i).tokens();
				assertThat(tight.get(i).tokens()).as("case %d after preemption", i).containsExactly(ids);
				assertThat(cached.get(i).tokens()).as("case %d, prefix caching", i).containsExactly(ids);
				assertThat(cached.get(prompts.size() + i).tokens()).as("case %d, prefix cache hit", i).containsExactly(ids);
				if (roomy.get(i).finishReason() == FinishReason.STOP) {
					stopped++;
					String text = tok.decodeContinuation(prompts.get(i), ids); // EOS, if last, is special: skipped
					assertThat(oracle.errors(text)).as(text).isEmpty();
				}
			}
		}
		assertThat(cached.subList(prompts.size(), 2 * prompts.size()).stream()
			.mapToInt(OfflineGenerator.Result::cachedPromptTokens).sum()).as("second pass hits the prefix cache").isPositive();
		assertThat(stopped).as("greedy outputs that finished").isPositive();
	}

	/** A SentencePiece vocabulary with byte fallback (stories260K): choices and a regex come out exact. */
	@Test
	void sentencePieceModelFollowsChoiceAndRegex() {
		List<String> choices = List.of("Lily was happy.", "Tom saw a big dog!", "The end");
		java.util.regex.Pattern date = java.util.regex.Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2} at [0-9]{1,2}(am|pm)");
		withStories((tok, gen) -> {
			List<int[]> prompts = new ArrayList<>();
			for (int i = 0; i < 6; i++) {
				prompts.add(tok.encode("Once upon a time " + i, true));
			}
			SamplingParams choice = SamplingParams.builder().temperature(1).seed(3L).maxTokens(40)
				.grammar(dev.blockserve.constraint.ChoiceGrammar.of(choices)).build();
			SamplingParams regex = SamplingParams.builder().temperature(1).seed(4L).maxTokens(40)
				.grammar(dev.blockserve.constraint.RegexCompiler.compile(date.pattern())).build();
			var a = gen.generate(prompts, choice);
			var b = gen.generate(prompts, regex);
			for (int i = 0; i < prompts.size(); i++) {
				assertThat(a.get(i).finishReason()).isEqualTo(FinishReason.STOP);
				assertThat(tok.decodeContinuation(prompts.get(i), a.get(i).tokens())).isIn(choices);
				assertThat(b.get(i).finishReason()).isEqualTo(FinishReason.STOP);
				String text = tok.decodeContinuation(prompts.get(i), b.get(i).tokens());
				assertThat(date.matcher(text).matches()).as(text).isTrue();
			}
		});
	}

	/** Runs {@code body} with stories260K's tokenizer and an offline generator over a pool of 256 blocks of 16. */
	static void withStories(java.util.function.BiConsumer<TextTokenizer, OfflineGenerator> body) {
		var dir = SharedModels.dir("stories260K");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0);
				TextTokenizer tok = TextTokenizer.load(dir); KvCacheMemory cache = m.newKvCache(256, 16)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(256, 16, 5), false, "stories260K", 0);
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(64), tok,
					GenerationConfig.read(dir, m.config()))) {
				body.accept(tok, gen);
			}
		}
	}

	/**
	 * Reasoning before a grammar (vLLM's structured outputs behind a reasoning parser): while the block is open
	 * the model writes freely (the same greedy tokens as without a grammar), the block ends at the first
	 * token whose text completes the end tag, even across tokens, and from the next token on the grammar holds.
	 * And an answer that may open the block does so only with the opening token; else the grammar holds at once.
	 */
	@Test
	void aReasoningBlockRunsFreeUntilItsEndThenTheGrammarHolds() {
		java.util.regex.Pattern digits = java.util.regex.Pattern.compile("[0-9]{4}");
		withStories((tok, gen) -> {
			int[] prompt = tok.encode("Once upon a time, there was a little dog", true);
			int[] free = gen.generate(List.of(prompt), SamplingParams.builder().temperature(0).maxTokens(30).ignoreEos(true)
				.build()).get(0).tokens();
			String freeText = tok.decodeContinuation(prompt, free);
			String end = freeText.substring(4, 11); // spans tokens of the free answer
			int k = 1;
			while (!tok.decodeContinuation(prompt, java.util.Arrays.copyOf(free, k)).contains(end)) {
				k++;
			}
			assertThat(k).as("the end tag takes more than one token").isGreaterThan(1);
			for (int i = 0; i < k; i++) {
				assertThat(free[i]).as("no EOS inside the block (it is masked there)").isNotIn(1, 2);
			}
			Grammar g = dev.blockserve.constraint.RegexCompiler.compile(digits.pattern());
			int[] out = gen.generate(List.of(prompt), SamplingParams.builder().temperature(0).maxTokens(30).grammar(g)
				.reasoning(new SamplingParams.Reasoning(true, -1, end)).build()).get(0).tokens();
			assertThat(java.util.Arrays.copyOf(out, k)).as("the block: the free greedy tokens").containsExactly(
					java.util.Arrays.copyOf(free, k));
			String after = tok.decodeContinuation(java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt),
					java.util.Arrays.stream(out, 0, k)).toArray(), java.util.Arrays.copyOfRange(out, k, out.length));
			assertThat(digits.matcher(after).matches()).as("after the block: %s", after).isTrue();

			// may open: the opening token (a rare one here, "~"), forced by a bias, opens it; the block here ends
			// with the next one
			int[] tilde = tok.encode("~", false);
			int open = tilde[tilde.length - 1];
			String openText = tok.decodeContinuation(prompt, new int[] { open });
			SamplingParams.Reasoning mayOpen = new SamplingParams.Reasoning(false, open, openText + openText);
			int[] opened = gen.generate(List.of(prompt), SamplingParams.builder().temperature(0).maxTokens(30).grammar(g)
				.logitBias(SamplingParams.LogitBias.of(java.util.Map.of(open, 100))).reasoning(mayOpen).build()).get(0).tokens();
			assertThat(opened[0]).isEqualTo(open);
			assertThat(opened[1]).isEqualTo(open);
			String rest = tok.decodeContinuation(java.util.stream.IntStream.concat(java.util.Arrays.stream(prompt),
					java.util.Arrays.stream(opened, 0, 2)).toArray(), java.util.Arrays.copyOfRange(opened, 2, opened.length));
			assertThat(digits.matcher(rest).matches()).as("after the block: %s", rest).isTrue();
			// without the bias the greedy choice is a grammar token (a digit, likelier than "~"), and the grammar
			// holds at once
			var declined = gen.generate(List.of(prompt), SamplingParams.builder().temperature(0).maxTokens(30).grammar(g)
				.reasoning(mayOpen).build()).get(0);
			String whole = tok.decodeContinuation(prompt, declined.tokens());
			assertThat(declined.tokens()[0]).isNotEqualTo(open);
			assertThat(digits.matcher(whole).matches()).as(whole).isTrue();
			assertThat(declined.finishReason()).isEqualTo(FinishReason.STOP);
		});
	}
}
