package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.kvcache.KvCacheSnapshot;

/**
 * What the dashboard shows, published by the engine thread a few times a second: the block pool, every
 * live sequence, and running totals from which rates are derived.
 *
 * @param generatedTokens tokens generated since start
 * @param recentTtftMillis moving average of recent times to first token
 */
public record EngineSnapshot(long timestampMillis, KvCacheSnapshot kv, List<SequenceInfo> sequences, int running,
		int waiting, long generatedTokens, long promptTokens, long preemptions, double recentTtftMillis) {

	/** One live sequence: its id (the key of its block table), its request, choice index and progress. */
	public record SequenceInfo(long id, long requestId, int index, String status, int promptTokens,
			int generatedTokens, int computedTokens) {
	}
}
