package dev.blockserve.engine;

import dev.blockserve.scheduler.SchedulerConfig;

/**
 * @param scheduler budgets and policy of each step
 * @param prefixCaching reuse KV blocks of identical prompt prefixes
 * Immutable.
 */
public record EngineConfig(SchedulerConfig scheduler, boolean prefixCaching) {
}
