package dev.blockserve.config;

import java.time.Duration;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * {@code blockserve.admission.*}: what the server lets in. Beyond the waiting queue's bounds requests get
 * a 429 with Retry-After; a request too large for the per-request caps gets a 400 naming the cap.
 *
 * @param maxWaitingRequests requests submitted but not yet running, at most (0: unbounded)
 * @param maxWaitingPromptTokens their prompt tokens, at most (0: unbounded)
 * @param maxSequencesPerRequest prompts × n in one request
 * @param maxRequestTokens (prompt + max_tokens) × n summed over one request's prompts
 * @param rateLimit per API key (off by default)
 * @param stallTimeout the engine with work but no step for this long reports DOWN and refuses requests (503)
 */
@ConfigurationProperties("blockserve.admission")
public record AdmissionProperties(@DefaultValue("256") int maxWaitingRequests,
		@DefaultValue("262144") long maxWaitingPromptTokens, @DefaultValue("256") int maxSequencesPerRequest,
		@DefaultValue("4194304") long maxRequestTokens, @DefaultValue RateLimit rateLimit,
		@DefaultValue("120s") Duration stallTimeout) {

	public AdmissionProperties {
		if (maxWaitingRequests < 0 || maxWaitingPromptTokens < 0) {
			throw new IllegalArgumentException("blockserve.admission.max-waiting-* must be >= 0");
		}
		if (maxSequencesPerRequest < 1 || maxRequestTokens < 1) {
			throw new IllegalArgumentException("blockserve.admission.max-sequences-per-request and max-request-tokens must be >= 1");
		}
		if (stallTimeout.isNegative() || stallTimeout.isZero()) {
			throw new IllegalArgumentException("blockserve.admission.stall-timeout must be positive, got " + stallTimeout);
		}
	}

	/**
	 * @param requestsPerSecond per API key (the bearer key; "anonymous" without one); 0 for no limit
	 * @param tokensPerMinute per API key, counting prompt plus max_tokens of each request; 0 for no limit
	 */
	public record RateLimit(@DefaultValue("0") int requestsPerSecond, @DefaultValue("0") long tokensPerMinute) {

		public RateLimit {
			if (requestsPerSecond < 0 || tokensPerMinute < 0) {
				throw new IllegalArgumentException("blockserve.admission.rate-limit values must be >= 0");
			}
		}
	}
}
