package dev.blockserve.engine;

import java.time.Duration;

import dev.blockserve.scheduler.SchedulerConfig;

/**
 * How the server's engine runs. Immutable.
 *
 * @param scheduler budgets and policy of each step
 * @param prefixCaching reuse KV blocks of identical prompt prefixes
 * @param maxWaitingRequests requests admitted but not yet scheduled at most; beyond it submit refuses
 * (the API answers 429); 0 for no bound
 * @param maxWaitingPromptTokens prompt tokens of those requests at most; 0 for no bound
 * @param stallTimeout when the engine has work but runs no step for this long, it reports itself down
 * and refuses new requests
 */
public record EngineConfig(SchedulerConfig scheduler, boolean prefixCaching, int maxWaitingRequests,
		long maxWaitingPromptTokens, Duration stallTimeout) {

	public EngineConfig {
		if (maxWaitingRequests < 0 || maxWaitingPromptTokens < 0) {
			throw new IllegalArgumentException("waiting-queue bounds must be >= 0");
		}
		if (stallTimeout == null || stallTimeout.isNegative() || stallTimeout.isZero()) {
			throw new IllegalArgumentException("the stall timeout must be positive, got " + stallTimeout);
		}
	}

	/** No admission bounds, a two-minute stall timeout. */
	public EngineConfig(SchedulerConfig scheduler, boolean prefixCaching) {
		this(scheduler, prefixCaching, 0, 0, Duration.ofMinutes(2));
	}
}
