package dev.blockserve.scheduler;

/**
 * Per-step budgets and policy.
 *
 * @param maxNumSeqs sequences in one step at most
 * @param maxNumBatchedTokens tokens (prefill chunks plus decodes) in one step at most
 * @param longPrefillTokenThreshold most prompt tokens one sequence brings to a step (chunked prefill); 0 for
 * no cap beyond the token budget
 * @param policy order of admission and, reversed, of preemption
 * @param speculative draft tokens by prompt lookup, verified in the step ({@link SpeculativeConfig#OFF} for none)
 * @param maxPrefillTokens prompt tokens of all sequences together in one step at most, decodes not counted; 0 for
 * no cap beyond the token budget. With it the decodes running do not shrink what prompts get: a prompt that fits
 * is computed in one step instead of split across two behind them
 * Immutable.
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int longPrefillTokenThreshold,
		Policy policy, SpeculativeConfig speculative, int maxPrefillTokens) {

	public enum Policy {
		/** first come, first served */
		FCFS,
		/** lower priority value first, arrival order among equals */
		PRIORITY
	}

	public SchedulerConfig {
		if (maxNumSeqs < 1) {
			throw new IllegalArgumentException("blockserve.scheduler.max-num-seqs must be >= 1, got " + maxNumSeqs);
		}
		if (maxNumBatchedTokens < 1) {
			throw new IllegalArgumentException(
					"blockserve.scheduler.max-num-batched-tokens must be >= 1, got " + maxNumBatchedTokens);
		}
		if (longPrefillTokenThreshold < 0) {
			throw new IllegalArgumentException(
					"blockserve.scheduler.long-prefill-token-threshold must be >= 0, got " + longPrefillTokenThreshold);
		}
		if (policy == null) {
			throw new IllegalArgumentException("blockserve.scheduler.policy must be fcfs or priority");
		}
		if (speculative == null) {
			throw new IllegalArgumentException("speculative: use SpeculativeConfig.OFF for none");
		}
		if (maxPrefillTokens < 0) {
			throw new IllegalArgumentException(
					"blockserve.scheduler.max-prefill-tokens must be >= 0, got " + maxPrefillTokens);
		}
	}

	/** Without speculation, prompts capped by the token budget alone. */
	public SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int longPrefillTokenThreshold, Policy policy) {
		this(maxNumSeqs, maxNumBatchedTokens, longPrefillTokenThreshold, policy, SpeculativeConfig.OFF, 0);
	}

	/** The same budgets and policy with {@code s} for speculation. */
	public SchedulerConfig withSpeculative(SpeculativeConfig s) {
		return new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, longPrefillTokenThreshold, policy, s,
				maxPrefillTokens);
	}

	/** The same budgets and policy with prompts capped at {@code n} tokens a step besides decodes. */
	public SchedulerConfig withMaxPrefillTokens(int n) {
		return new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, longPrefillTokenThreshold, policy, speculative, n);
	}

	/**
	 * Defaults for the CPU backend: steps stay short, so decoding stays smooth while prompts arrive. At most
	 * 256 prompt tokens a step besides the decodes (and 320 tokens in all, room for 64 decodes): on a 2-core Zen
	 * 4 with the SmolLM2-135M-shaped BF16 model under a burst of 8 or 32 clients, 256 prompt tokens a step gave
	 * the same output tokens/s as 512 and a 25-30% lower median time to first token (more prompts finish their
	 * prefill in earlier, shorter steps), 128 and 192 no better; leaving decodes out of it let two 128-token
	 * prompts arriving together finish in one step instead of one of them split behind the decodes, and
	 * lowered the second wave's TTFT at 32 clients by about a fifth (docs/benchmarks.md, the step token budget,
	 * and the prompt budget of the twenty-first session).
	 */
	public static SchedulerConfig cpuDefaults() {
		return new SchedulerConfig(64, 320, 256, Policy.FCFS).withMaxPrefillTokens(256);
	}

	/** Defaults for CUDA: larger steps keep the GPU busy. */
	public static SchedulerConfig gpuDefaults() {
		return new SchedulerConfig(256, 8192, 2048, Policy.FCFS);
	}
}
