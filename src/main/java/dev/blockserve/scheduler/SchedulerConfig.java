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
 * Immutable.
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int longPrefillTokenThreshold,
		Policy policy, SpeculativeConfig speculative) {

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
	}

	/** Without speculation. */
	public SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int longPrefillTokenThreshold, Policy policy) {
		this(maxNumSeqs, maxNumBatchedTokens, longPrefillTokenThreshold, policy, SpeculativeConfig.OFF);
	}

	/** The same budgets and policy with {@code s} for speculation. */
	public SchedulerConfig withSpeculative(SpeculativeConfig s) {
		return new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, longPrefillTokenThreshold, policy, s);
	}

	/**
	 * Defaults for the CPU backend: steps stay short, so decoding stays smooth while prompts arrive. At most
	 * one 256-token prompt chunk a step: on a 2-core Zen 4 with the SmolLM2-135M-shaped BF16 model under a
	 * burst of 8 or 32 clients, 256 tokens a step gave the same output tokens/s as 512 and a 25-30% lower
	 * median time to first token (more prompts finish their prefill in earlier, shorter steps); 128 and 192
	 * were no better (docs/benchmarks.md, the step token budget).
	 */
	public static SchedulerConfig cpuDefaults() {
		return new SchedulerConfig(64, 256, 256, Policy.FCFS);
	}

	/** Defaults for CUDA: larger steps keep the GPU busy. */
	public static SchedulerConfig gpuDefaults() {
		return new SchedulerConfig(256, 8192, 2048, Policy.FCFS);
	}
}
