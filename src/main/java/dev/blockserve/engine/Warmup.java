package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.scheduler.SchedulerConfig;

/**
 * A short generation through the engine's own classes (scheduler, model runner, sampler, output
 * processor, detokenizer) before the server takes requests, so that the first users do not pay for
 * class loading and the JIT: measured on a 2-core EPYC with a SmolLM2-135M-shaped model, a server's first
 * request took 1.4 s to its first token and its first four ran 15-20% slower than later ones (llama.cpp's
 * server warms up the same way). It runs on its own block pool over the runtime's KV memory, with no
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
		int promptLen = Math.max(1, Math.min(2 * newTokens, rt.model().maxPositions() - newTokens - 1));
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
