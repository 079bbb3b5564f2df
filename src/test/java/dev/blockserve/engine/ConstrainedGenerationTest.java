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
		var dir = SharedModels.dir("stories260K");
		List<String> choices = List.of("Lily was happy.", "Tom saw a big dog!", "The end");
		java.util.regex.Pattern date = java.util.regex.Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2} at [0-9]{1,2}(am|pm)");
		try (CpuBackend backend = new CpuBackend(0); LlamaModel m = LlamaModel.load(dir, backend, 0);
				TextTokenizer tok = TextTokenizer.load(dir); KvCacheMemory cache = m.newKvCache(256, 16)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(256, 16, 5), false, "stories260K", 0);
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(64), tok,
					GenerationConfig.read(dir, m.config()))) {
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
			}
		}
	}
}
