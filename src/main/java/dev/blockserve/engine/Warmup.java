package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.scheduler.SchedulerConfig;

/**
 * A short generation through the engine's own classes (scheduler, model runner, sampler, output
 * processor, detokenizer) before the server takes requests, so that the first users do not pay for
 * class loading and the JIT of the engine (llama.cpp's server warms up the same way). Measured on a
 * 2-core EPYC with a SmolLM2-135M-shaped model: without it a server's first 64-token request took
 * 2.1-3.4 s and the next three 1.7-2.2 s, against 1.45-1.6 s once warm; with it 2.2-2.4 s and 1.6-1.9 s.
 * What remains is the HTTP path's own warming, which this does not reach. It runs on its own block pool over the runtime's KV memory, with no
 * listener, so it leaves no blocks, prefix-cache entries or metrics behind: the KV memory it wrote is
 * only ever read after being written again.
 * Thread: the caller's (start-up), before the engine thread exists.
 */
public final class Warmup {

	private Warmup() {
	}

	/**
	 * Runs a greedy and a sampled request of {@code newTokens} new tokens each after a prompt of
	 * {@code 2 * newTokens} tokens; returns the wall time in milliseconds.
	 */
	public static long run(ModelRuntime rt, SchedulerConfig scheduler, int newTokens) {
		if (newTokens <= 0) {
			return 0;
		}
		long t0 = System.nanoTime();
		var cache = rt.cache();
		int vocab = rt.model().config().vocabSize();
		// a short context (a small pool shortens it) takes a shorter warm-up rather than refusing to start
		int context = rt.model().maxPositions();
		newTokens = Math.min(newTokens, Math.max(1, (context - 1) / 2));
		int promptLen = Math.max(1, Math.min(2 * newTokens, context - newTokens));
		int[] prompt = new int[promptLen];
		for (int i = 0; i < promptLen; i++) {
			prompt[i] = (int) ((i * 7919L + 11) % vocab); // any ids: the model only needs them in range
		}
		var kv = new KvCacheManager(new BlockPool(cache.numBlocks(), cache.blockSize()), false, rt.name(),
				rt.model().config().features().maxWindow());
		try (var gen = new OfflineGenerator(rt.model(), cache, kv, scheduler, rt.tokenizer(), rt.generationConfig())) {
			gen.generate(List.of(prompt), SamplingParams.builder().maxTokens(newTokens).ignoreEos(true).build());
			gen.generate(List.of(prompt), SamplingParams.builder().maxTokens(newTokens).ignoreEos(true).temperature(0.8)
				.topP(0.95).topK(40).seed(1L).build());
		}
		return (System.nanoTime() - t0) / 1_000_000;
	}
}
