package dev.blockserve.kvcache;

import java.util.HashMap;
import java.util.Map;

/**
 * Per-request block management over a {@link BlockPool}: prefix matching for new requests, all-or-nothing
 * allocation of the blocks a step needs, registration of blocks into the prefix cache once full, forking
 * into siblings that share blocks, copy-on-write of shared partly filled blocks, and freeing.
 * <p>
 * Typical use for one request: {@link #newTable}; at admission {@link #matchPrefix} then
 * {@link #allocate} (which adopts the match); before each step {@link #allocate} for the step's tokens and
 * {@link #prepareWrite} for copy-on-write; after the step {@link #commit}; at the end {@link #free}.
 * Not thread-safe: the engine thread owns it.
 */
public final class KvCacheManager {

	private final BlockPool pool;

	private final int blockSize;

	private final boolean prefixCaching;

	private final long root;

	/**
	 * The attention window in tokens when every layer has one (Mistral), else 0. Blocks wholly before a
	 * sequence's window are never read again: {@link #removeSkipped} gives them back to the pool.
	 */
	private final int slidingWindow;

	private final Map<Long, BlockTable> live = new HashMap<>();

	private long prefixQueryTokens;

	/** Whether prefix lookups count in the hit statistics (not for the server's own warm-up). */
	private boolean countStats = true;

	private long prefixHitTokens;

	/**
	 * @param extraKey what, besides the tokens, identifies cached content (the model name)
	 */
	public KvCacheManager(BlockPool pool, boolean prefixCaching, String extraKey) {
		this(pool, prefixCaching, extraKey, 0);
	}

	/**
	 * @param slidingWindow the model's attention window when every layer has one, else 0: a sequence then
	 * holds about window/blockSize + 1 blocks however long it grows
	 */
	public KvCacheManager(BlockPool pool, boolean prefixCaching, String extraKey, int slidingWindow) {
		if (slidingWindow < 0) {
			throw new IllegalArgumentException("slidingWindow must be >= 0, got " + slidingWindow);
		}
		this.pool = pool;
		this.blockSize = pool.blockSize();
		this.prefixCaching = prefixCaching;
		this.root = BlockHasher.root(extraKey);
		this.slidingWindow = slidingWindow;
	}

	public int slidingWindow() {
		return slidingWindow;
	}

	/**
	 * With a sliding window: frees the table's blocks wholly before the window of the next token to compute
	 * (position {@code numComputed} sees keys from numComputed + 1 - window on). Their entries become
	 * {@link BlockTable#SKIPPED} and the logical size stays. A freed full block keeps its prefix-cache entry
	 * (cached, reusable by a later prompt that starts the same way) until evicted, as in vLLM's
	 * sliding-window manager (its null block for skipped entries).
	 */
	public void removeSkipped(BlockTable table, int numComputed) {
		if (slidingWindow == 0) {
			return;
		}
		int firstKey = numComputed + 1 - slidingWindow;
		int skippable = Math.min(firstKey / blockSize, table.size);
		for (int i = table.numSkipped; i < skippable; i++) {
			pool.release(table.blocks[i]);
			table.blocks[i] = BlockTable.SKIPPED;
		}
		table.numSkipped = Math.max(table.numSkipped, skippable);
	}

	public BlockPool pool() {
		return pool;
	}

	public int blockSize() {
		return blockSize;
	}

	public boolean prefixCaching() {
		return prefixCaching;
	}

	public BlockTable newTable(long requestId) {
		return newTable(requestId, root);
	}

	/**
	 * A table whose blocks enter, and match, only the prefix cache of {@code cacheSalt} (vLLM's cache_salt;
	 * null: the common cache). Hashes the salt: once per admission.
	 */
	public BlockTable newTable(long requestId, String cacheSalt) {
		return newTable(requestId, cacheSalt == null ? root : BlockHasher.salted(root, cacheSalt));
	}

	private BlockTable newTable(long requestId, long root) {
		BlockTable t = new BlockTable(requestId, root);
		if (live.putIfAbsent(requestId, t) != null) {
			throw new IllegalArgumentException("request " + requestId + " already has a block table");
		}
		return t;
	}

	public BlockTable table(long requestId) {
		return live.get(requestId);
	}

	public int numLiveTables() {
		return live.size();
	}

	public static int blocksFor(int tokens, int blockSize) {
		return (tokens + blockSize - 1) / blockSize;
	}

	/**
	 * Finds the longest run of cached blocks that {@code tokens[0..len)} starts with, capped so that at
	 * least one prompt token is left to compute (its logits are needed). Pins nothing: the match is
	 * adopted, or not, by {@link #allocate}.
	 */
	public PrefixMatch matchPrefix(int[] tokens, int len, PrefixMatch out) {
		return matchPrefix(root, tokens, len, out);
	}

	/** {@link #matchPrefix(int[], int, PrefixMatch)} in the cache of {@code table}'s salt, for it to adopt. */
	public PrefixMatch matchPrefix(BlockTable table, int[] tokens, int len, PrefixMatch out) {
		return matchPrefix(table.root, tokens, len, out);
	}

	private PrefixMatch matchPrefix(long root, int[] tokens, int len, PrefixMatch out) {
		out.clear(root);
		out.queriedTokens = len;
		if (!prefixCaching) {
			return out;
		}
		int maxBlocks = (len - 1) / blockSize;
		long parent = root;
		for (int i = 0; i < maxBlocks; i++) {
			long h = BlockHasher.hash(parent, tokens, i * blockSize, blockSize);
			int b = pool.lookup(h, parent, tokens, i * blockSize);
			if (b < 0) {
				break;
			}
			out.add(b, h);
			parent = h;
		}
		out.lastHash = parent;
		return out;
	}

	/**
	 * Grows {@code table} to cover {@code totalTokens} tokens, first adopting {@code match} if the table is
	 * empty and a match is given. All or nothing: if the pool cannot supply every block, nothing changes
	 * and false is returned.
	 */
	public boolean allocate(BlockTable table, int totalTokens, PrefixMatch match) {
		int adopt = match != null && table.size == 0 ? match.numBlocks : 0;
		if (adopt > 0 && match.root != table.root) {
			throw new IllegalStateException("a prefix match of another cache salt cannot be adopted");
		}
		for (int i = 0; i < adopt; i++) {
			int b = match.blocks[i];
			if (!pool.isHashed(b) || pool.hashOf(b) != match.hashes[i]) {
				throw new IllegalStateException("prefix match is stale: block " + b + " was evicted since matchPrefix");
			}
		}
		int needNew = blocksFor(totalTokens, blockSize) - table.size - adopt;
		// Adopted blocks that sit in the free queue (cached, unreferenced) stop being allocatable.
		int adoptFromQueue = 0;
		for (int i = 0; i < adopt; i++) {
			if (pool.refCount(match.blocks[i]) == 0) {
				adoptFromQueue++;
			}
		}
		if (Math.max(needNew, 0) + adoptFromQueue > pool.numFree()) {
			return false;
		}
		if (match != null && table.size == 0) {
			if (countStats) {
				prefixQueryTokens += match.queriedTokens;
				prefixHitTokens += (long) adopt * blockSize;
			}
			for (int i = 0; i < adopt; i++) {
				pool.touch(match.blocks[i]);
				table.add(match.blocks[i]);
			}
			table.numHashed = adopt;
			table.lastHash = match.lastHash;
		}
		for (int i = 0; i < needNew; i++) {
			table.add(pool.allocate());
		}
		return true;
	}

	/**
	 * Before tokens [from, to) are written: every block they land in that is shared with another table is
	 * replaced by a private copy (copy-on-write); the copies to perform are added to {@code copies}. All or
	 * nothing: false, and no change, when the pool lacks the blocks.
	 */
	public boolean prepareWrite(BlockTable table, int from, int to, BlockCopies copies) {
		if (to <= from) {
			return true;
		}
		int first = from / blockSize;
		int last = (to - 1) / blockSize;
		if (last >= table.size) {
			throw new IllegalArgumentException("tokens up to " + to + " are not allocated (" + table.size + " blocks)");
		}
		int shared = 0;
		for (int i = first; i <= last; i++) {
			if (pool.refCount(table.blocks[i]) > 1) {
				shared++;
			}
		}
		if (shared > pool.numFree()) {
			return false;
		}
		for (int i = first; i <= last; i++) {
			int b = table.blocks[i];
			if (pool.refCount(b) > 1) {
				int copy = pool.allocate();
				copies.add(b, copy);
				pool.release(b);
				table.blocks[i] = copy;
			}
		}
		return true;
	}

	/**
	 * Registers the table's blocks that are now full of computed tokens ({@code tokens[0..numComputed)})
	 * in the prefix cache.
	 */
	public void commit(BlockTable table, int[] tokens, int numComputed) {
		if (!prefixCaching) {
			return;
		}
		int full = Math.min(numComputed / blockSize, table.size);
		while (table.numHashed < full) {
			int i = table.numHashed;
			long h = BlockHasher.hash(table.lastHash, tokens, i * blockSize, blockSize);
			if (table.blocks[i] != BlockTable.SKIPPED) {
				pool.register(table.blocks[i], h, table.lastHash, tokens, i * blockSize);
			}
			table.lastHash = h;
			table.numHashed++;
		}
	}

	/** A new table for {@code childId} sharing every block of {@code parent} (reference counts go up). */
	public BlockTable fork(BlockTable parent, long childId) {
		BlockTable child = newTable(childId, parent.root);
		for (int i = 0; i < parent.size; i++) {
			if (i >= parent.numSkipped) {
				pool.touch(parent.blocks[i]);
			}
			child.add(parent.blocks[i]);
		}
		child.numSkipped = parent.numSkipped;
		child.numHashed = parent.numHashed;
		child.lastHash = parent.lastHash;
		return child;
	}

	/** Returns every block of the table, last block first, so a request's tail is evicted before its head. */
	public void free(BlockTable table) {
		if (live.remove(table.requestId) != table) {
			throw new IllegalStateException("block table of request " + table.requestId + " is not live");
		}
		for (int i = table.size - 1; i >= table.numSkipped; i--) {
			pool.release(table.blocks[i]);
		}
		table.size = 0;
		table.numSkipped = 0;
		table.numHashed = 0;
		table.lastHash = table.root;
	}

	/** Counts prefix lookups in the statistics, or not (the server's warm-up requests). */
	public void countPrefixStats(boolean on) {
		countStats = on;
	}

	public long prefixQueryTokens() {
		return prefixQueryTokens;
	}

	public long prefixHitTokens() {
		return prefixHitTokens;
	}

	/**
	 * Checks every invariant: the pool's own, and that each block's reference count equals the number of
	 * live tables holding it. Throws {@link IllegalStateException} naming the first violation.
	 */
	public void checkInvariants() {
		KvInvariants.check(pool, live.values());
	}

	/** A copy of the pool's state and every live table, for the dashboard and metrics (engine thread). */
	public KvCacheSnapshot snapshot() {
		return KvCacheSnapshot.of(pool, live.values(), prefixQueryTokens, prefixHitTokens);
	}
}
