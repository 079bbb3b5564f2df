package dev.blockserve.scheduler;

/**
 * Speculative decoding by prompt lookup (vLLM's "ngram" method): a decoding sequence whose last tokens
 * occurred earlier in its own tokens proposes the tokens that followed them there as drafts, and one
 * step verifies them all. Immutable.
 *
 * @param numTokens drafts per sequence and step at most; 0 turns speculation off
 * @param lookupMin shortest n-gram looked up (vLLM's prompt_lookup_min)
 * @param lookupMax longest n-gram looked up, tried first (vLLM's prompt_lookup_max)
 * @param maxBatch speculate only while at most this many sequences run: a larger batch already fills the
 * machine, and draft rows that are rejected would cost it throughput
 */
public record SpeculativeConfig(int numTokens, int lookupMin, int lookupMax, int maxBatch) {

	/** No speculation. */
	public static final SpeculativeConfig OFF = new SpeculativeConfig(0, 1, 1, 1);

	public SpeculativeConfig {
		if (numTokens < 0 || numTokens > 64) {
			throw new IllegalArgumentException("blockserve.speculative.num-tokens must be in 0..64, got " + numTokens);
		}
		if (lookupMin < 1 || lookupMax < lookupMin) {
			throw new IllegalArgumentException("blockserve.speculative.prompt-lookup-min must be >= 1 and <= "
					+ "prompt-lookup-max, got " + lookupMin + " and " + lookupMax);
		}
		if (maxBatch < 1) {
			throw new IllegalArgumentException("blockserve.speculative.max-batch must be >= 1, got " + maxBatch);
		}
	}

	public boolean enabled() {
		return numTokens > 0;
	}
}
