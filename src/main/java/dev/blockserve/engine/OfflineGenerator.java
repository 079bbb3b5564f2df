package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.SchedulerConfig;

/**
 * Generation for a fixed set of prompts without a server: adds them all to an {@link EngineCore} and
 * steps it until every one has finished, so the command line and the golden tests run the production
 * scheduler, KV manager, sampling and stop rules (preemption and prefix caching included). Keeps the
 * logits that chose each prompt's first token, for golden checks. Used by one thread at a time.
 */
public final class OfflineGenerator implements AutoCloseable {

	/** One prompt's outcome: its new tokens, the logits that chose the first of them, why it ended. */
	public record Result(int[] tokens, float[] firstLogits, FinishReason finishReason, int cachedPromptTokens) {
	}

	private final EngineCore core;

	private long nextId = 1;

	/** @param tokenizer null for token ids only */
	public OfflineGenerator(LlamaModel model, KvCacheMemory cache, KvCacheManager kv, SchedulerConfig config,
			TextTokenizer tokenizer, GenerationConfig generation) {
		this(model, cache, kv, config, tokenizer, generation, null);
	}

	/** @param listener observes the engine (null for none) */
	public OfflineGenerator(LlamaModel model, KvCacheMemory cache, KvCacheManager kv, SchedulerConfig config,
			TextTokenizer tokenizer, GenerationConfig generation, EngineListener listener) {
		this.core = new EngineCore(model, cache, kv, config, tokenizer, generation, listener);
	}

	/** A scheduler configuration for offline runs: every prompt in one batch, prefills cut into chunks of {@code prefillChunk}. */
	public static SchedulerConfig batchConfig(int prefillChunk) {
		return new SchedulerConfig(256, 8192, prefillChunk, SchedulerConfig.Policy.FCFS);
	}

	/** Collects one request's events. */
	private static final class Collector implements RequestOutput {

		int[] tokens = new int[16];

		int count;

		float[] firstLogits;

		FinishReason finish;

		int cached;

		EngineException error;

		@Override
		public void event(GenerationEvent e) {
			for (int t : e.tokenIds()) {
				if (count == tokens.length) {
					tokens = Arrays.copyOf(tokens, count * 2);
				}
				tokens[count++] = t;
			}
			if (e.finished()) {
				finish = e.finishReason();
				cached = e.cachedPromptTokens();
			}
		}

		@Override
		public void complete() {
		}

		@Override
		public void fail(EngineException e) {
			error = e;
		}

		@Override
		public boolean wantsFirstLogits() {
			return true;
		}

		@Override
		public void firstLogits(float[] row, int offset, int vocab) {
			firstLogits = Arrays.copyOfRange(row, offset, offset + vocab);
		}
	}

	/**
	 * Generates for every prompt with {@code params} (n must be 1) and returns the results in prompt order.
	 * @throws RequestRejectedException when a prompt can never run
	 * @throws EngineException when generation fails
	 */
	public List<Result> generate(List<int[]> prompts, SamplingParams params) {
		if (params.n() != 1) {
			throw new IllegalArgumentException("offline generation returns one choice per prompt; n must be 1");
		}
		int[] maxTokens = new int[prompts.size()];
		for (int i = 0; i < maxTokens.length; i++) {
			maxTokens[i] = core.validate(prompts.get(i), params); // every prompt before any is queued
		}
		List<Collector> outs = new ArrayList<>();
		long arrival = System.nanoTime();
		for (int i = 0; i < maxTokens.length; i++) {
			Collector c = new Collector();
			outs.add(c);
			core.addValidated(nextId++, prompts.get(i).clone(), params, maxTokens[i], 0, arrival, 0, c);
		}
		try {
			while (core.hasWork()) {
				core.step();
			}
		}
		catch (RuntimeException e) {
			core.failAll(e);
			throw e;
		}
		List<Result> results = new ArrayList<>();
		for (Collector c : outs) {
			if (c.error != null) {
				throw c.error;
			}
			results.add(new Result(Arrays.copyOf(c.tokens, c.count), c.firstLogits, c.finish, c.cached));
		}
		return results;
	}

	/** Preemptions so far (a small pool forces them). */
	public long preemptions() {
		return core.preemptions();
	}

	@Override
	public void close() {
		core.close();
	}
}
