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

	/** Built on the engine thread from the pool and the live tables (skipped entries stay -1). */
	static KvCacheSnapshot of(BlockPool pool, java.util.Collection<BlockTable> live, long prefixQueryTokens,
			long prefixHitTokens) {
		int n = pool.numBlocks();
		byte[] states = new byte[n];
		int[] refs = new int[n];
		int used = 0, cached = 0;
		for (int b = 0; b < n; b++) {
			byte s = pool.state(b);
			states[b] = s;
			refs[b] = pool.refCount(b);
			if (s == BlockPool.USED) {
				used++;
			}
			else if (s == BlockPool.CACHED) {
				cached++;
			}
		}
		Request[] reqs = new Request[live.size()];
		int i = 0;
		for (BlockTable t : live) {
			reqs[i++] = new Request(t.requestId, java.util.Arrays.copyOf(t.blocks, t.size));
		}
		return new KvCacheSnapshot(pool.blockSize(), n, states, refs, reqs, used, cached, n - used - cached,
				prefixQueryTokens, prefixHitTokens, pool.evictions());
	}
}
