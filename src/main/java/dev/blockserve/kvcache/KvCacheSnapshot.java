package dev.blockserve.kvcache;

/**
 * The pool at one moment, for the dashboard and metrics. Per block: its state ({@link BlockPool#FREE},
 * {@link BlockPool#CACHED}, {@link BlockPool#USED}) and reference count; the requests holding each block
 * are given by {@code requests} (each with its block table, in order).
 * Immutable once built on the engine thread; read by the dashboard's threads.
 */
public record KvCacheSnapshot(int blockSize, int numBlocks, byte[] states, int[] refCounts, Request[] requests,
		int used, int cached, int free, long prefixQueryTokens, long prefixHitTokens, long evictions) {

	/** A request's block table. */
	public record Request(long id, int[] blocks) {
	}

	/** Fraction of blocks in use (cached-but-free blocks count as free, as in vLLM's kv_cache_usage). */
	public double usage() {
		return numBlocks == 0 ? 0 : (double) used / numBlocks;
	}
}
