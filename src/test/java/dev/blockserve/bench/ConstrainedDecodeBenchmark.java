package dev.blockserve.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.constraint.Grammar;
import dev.blockserve.constraint.JsonSchemaCompiler;
import dev.blockserve.engine.ModelRuntime;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import tools.jackson.databind.json.JsonMapper;

/**
 * Decode throughput at batch 8 with and without a grammar, through the engine core (scheduler, model,
 * sampler, grammar masks), on a SmolLM2-135M-shaped model (49,152-token byte-level vocabulary). The
 * grammar is an object with one free string, so that a random model keeps writing until max_tokens (the
 * same number of tokens as unconstrained). Greedy and sampled (temperature 1) each; rounds interleaved.
 * Run: java -cp "target/classes:target/test-classes:$CP" dev.blockserve.bench.ConstrainedDecodeBenchmark DIR [tokens=96] [rounds=3]
 */
public final class ConstrainedDecodeBenchmark {

	public static void main(String[] args) {
		Path dir = Path.of(args[0]);
		int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 96;
		int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 3;
		Grammar g = JsonSchemaCompiler.compile(JsonMapper.builder().build().readTree(
				"{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"],\"additionalProperties\":false}"));
		try (CpuBackend backend = new CpuBackend(2);
				ModelRuntime rt = new ModelRuntime(dir, backend, 1024, 16, 8 * 16, 0)) {
			List<int[]> prompts = new ArrayList<>();
			for (int i = 0; i < 8; i++) {
				prompts.add(rt.tokenizer().encode("Write item " + i + " as JSON:", false));
			}
			rt.tokenizer().vocabulary(rt.model().config().vocabSize()); // built once, as the server does at start
			String[] names = { "greedy", "greedy + grammar", "temperature 1", "temperature 1 + grammar" };
			SamplingParams[] params = { SamplingParams.greedy(tokens).toBuilder().ignoreEos(true).build(),
					SamplingParams.greedy(tokens).toBuilder().ignoreEos(true).grammar(g).build(),
					SamplingParams.builder().temperature(1).seed(1L).maxTokens(tokens).ignoreEos(true).build(),
					SamplingParams.builder().temperature(1).seed(1L).maxTokens(tokens).ignoreEos(true).grammar(g).build() };
			double[][] tps = new double[params.length][rounds + 1];
			for (int r = 0; r <= rounds; r++) { // round 0 warms up
				for (int v = 0; v < params.length; v++) {
					KvCacheManager kv = new KvCacheManager(new BlockPool(rt.cache().numBlocks(), 16), false, "bench", 0);
					try (OfflineGenerator gen = new OfflineGenerator(rt.model(), rt.cache(), kv, OfflineGenerator.batchConfig(512),
							rt.tokenizer(), rt.generationConfig())) {
						long t0 = System.nanoTime();
						var res = gen.generate(prompts, params[v]);
						double s = (System.nanoTime() - t0) / 1e9;
						int out = res.stream().mapToInt(x -> x.tokens().length).sum();
						tps[v][r] = out / s;
					}
				}
			}
			System.out.printf("batch 8, %d new tokens each, %d rounds after a warm-up; output tokens/s (median, range)%n", tokens,
					rounds);
			System.out.println("| decoding | tokens/s median | range |");
			System.out.println("|---|---|---|");
			for (int v = 0; v < params.length; v++) {
				double[] t = Arrays.copyOfRange(tps[v], 1, rounds + 1);
				Arrays.sort(t);
				System.out.printf("| %s | %.1f | %.1f-%.1f |%n", names[v], t[t.length / 2], t[0], t[t.length - 1]);
			}
		}
	}
}
