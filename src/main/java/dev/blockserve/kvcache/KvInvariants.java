package dev.blockserve.kvcache;

import java.util.Collection;

/**
 * The KV manager's invariant check, kept apart from the manager's per-step code: the pool's own
 * invariants, then that each block's reference count equals the number of live tables holding it and
 * that skipped (sliding-window) entries hold no block. Tests and diagnostics call it on the engine thread.
 */
final class KvInvariants {

	private KvInvariants() {
	}

	static void check(BlockPool pool, Collection<BlockTable> live) {
		pool.checkInvariants();
		int[] holders = new int[pool.numBlocks()];
		for (BlockTable t : live) {
			for (int i = 0; i < t.size; i++) {
				if (i < t.numSkipped) {
					if (t.blocks[i] != BlockTable.SKIPPED) {
						throw new IllegalStateException("table " + t.requestId + " entry " + i + " is skipped but holds a block");
					}
					continue;
				}
				holders[t.blocks[i]]++;
			}
			if (t.numHashed > t.size) {
				throw new IllegalStateException("table " + t.requestId + " hashed more blocks than it holds");
			}
			for (int i = t.numSkipped; i < t.numHashed; i++) {
				// a hashed entry of a live table is either still registered or a duplicate left unhashed
				if (pool.refCount(t.blocks[i]) < 1) {
					throw new IllegalStateException("table " + t.requestId + " holds unreferenced block " + t.blocks[i]);
				}
			}
		}
		for (int b = 0; b < holders.length; b++) {
			if (holders[b] != pool.refCount(b)) {
				throw new IllegalStateException("block " + b + " has reference count " + pool.refCount(b) + " but "
						+ holders[b] + " tables hold it");
			}
		}
	}
}
