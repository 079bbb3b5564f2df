package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.kvcache.KvCacheSnapshot;

/**
 * What the dashboard shows, published by the engine thread a few times a second: the block pool, every
 * live sequence, and running totals from which rates are derived.
 *
 * @param generatedTokens tokens generated since start
 * @param recentTtftMillis moving average of recent times to first token
 * @param draftTokens speculative draft tokens verified since start
 * @param acceptedDraftTokens of those, the ones kept
 */
public record EngineSnapshot(long timestampMillis, KvCacheSnapshot kv, List<SequenceInfo> sequences, int running,
		int waiting, long generatedTokens, long promptTokens, long preemptions, double recentTtftMillis, long draftTokens,
		long acceptedDraftTokens) {

	/** Built on the engine thread from its live requests. */
	static EngineSnapshot of(java.util.Collection<Request> requests, KvCacheSnapshot kv, int running, int waiting,
			long generatedTokens, long promptTokens, long preemptions, double recentTtftMillis, long draftTokens,
			long acceptedDraftTokens) {
		List<SequenceInfo> seqs = new java.util.ArrayList<>();
		for (Request r : requests) {
			for (EngineSequence s : r.seqs) {
				if (s.status() != dev.blockserve.scheduler.Sequence.Status.FINISHED) {
					seqs.add(new SequenceInfo(s.id(), r.id, s.index, s.status().name(), s.promptLength(),
							s.numOutputTokens(), s.numComputed()));
				}
			}
		}
		return new EngineSnapshot(System.currentTimeMillis(), kv, seqs, running, waiting, generatedTokens, promptTokens,
				preemptions, recentTtftMillis, draftTokens, acceptedDraftTokens);
	}

	/** One live sequence: its id (the key of its block table), its request, choice index and progress. */
	public record SequenceInfo(long id, long requestId, int index, String status, int promptTokens,
			int generatedTokens, int computedTokens) {
	}
}
