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
 * @param maxPrefillTokens prompt tokens of all sequences together in one step at most while any sequence decodes,
 * decodes not counted; 0 for no cap beyond the token budget. With it the decodes running do not shrink what prompts
 * get: a prompt that fits is computed in one step instead of split across two behind them. With nothing decoding
 * it does not apply (a lone long prompt goes in chunks of the threshold)
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
	 * 128 prompt tokens a step besides the decodes while any sequence decodes (and a prompt alone in 256-token
	 * chunks: a lone 4,000-token prompt's first token took 8.0-9.1 s that way against 8.4-9.6 in 128-token
	 * chunks). The decodes are
	 * left out of the prompt budget so that they cannot shrink it: with 256 tokens in all, 30 decodes split one
	 * of each pair of arriving 128-token prompts across two steps, and first tokens waited about three steps.
	 * On a 2-core Zen 5 with the SmolLM2-135M-shaped BF16 model, 128-token prompts, prompt budgets of 128, 192,
	 * 256 and 384 gave the same output tokens/s at 8 and 32 clients and median TTFTs of 245-260 / 325-347 /
	 * 419-496 / 467-533 ms at 8 clients and 373-416 / 616-684 / 537-565 / 748-793 at 32; with 512-token prompts
	 * 128 and 256 were level (docs/benchmarks.md, twenty-first session).
	 */
	public static SchedulerConfig cpuDefaults() {
		return new SchedulerConfig(64, 320, 256, Policy.FCFS).withMaxPrefillTokens(128);
	}

	/** Defaults for CUDA: larger steps keep the GPU busy. */
	public static SchedulerConfig gpuDefaults() {
		return new SchedulerConfig(256, 8192, 2048, Policy.FCFS);
	}
}
