package dev.blockserve.kvcache;

import java.util.Arrays;

/**
 * The physical blocks: a fixed number of blocks of {@code blockSize} token slots, with reference counts,
 * an intrusive doubly linked free queue (O(1) allocate, free and removal from the middle), and the prefix
 * cache's index from chained block hash to block.
 * <p>
 * Each block is in exactly one state: <b>used</b> (reference count above 0, not queued), <b>cached</b>
 * (count 0, queued, still holding a full hashed block of tokens that a later request may reuse), or
 * <b>free</b> (count 0, queued, holding nothing). Allocation takes the queue's head. Cached blocks are
 * appended at the tail when freed, so the least recently freed is evicted first; blocks that hold
 * nothing reusable go to the head, so they are handed out before any cached block is evicted.
 * <p>
 * State lives in primitive arrays indexed by block id: no object per block, no boxing, nothing allocated
 * per operation. Not thread-safe: the engine thread owns it.
 */
public final class BlockPool {

	public static final byte FREE = 0, CACHED = 1, USED = 2;

	private final int numBlocks;

	private final int blockSize;

	private final int[] refCount;

	// Intrusive free queue over block ids; index numBlocks is the sentinel (head = next[S], tail = prev[S]).
	private final int[] prev;

	private final int[] next;

	// A block is in the queue exactly when its reference count is 0, so no separate "queued" flag is kept.

	private int numFree;

	// Prefix cache: for a hashed block, its hash, its parent's hash and its tokens.
	private final boolean[] hashed;

	private final long[] hash;

	private final long[] parentHash;

	private final int[] tokens;

	private final LongIntMap index;

	private long evictions;

	public BlockPool(int numBlocks, int blockSize) {
		this(numBlocks, blockSize, 0);
	}

	/**
	 * @param shuffleSeed when not 0, the free queue starts in a random order of that seed, so consecutive
	 * allocations land on scattered physical blocks (tests use it to prove nothing assumes contiguity)
	 */
	public BlockPool(int numBlocks, int blockSize, long shuffleSeed) {
		if (numBlocks < 1 || blockSize < 1) {
			throw new IllegalArgumentException("numBlocks and blockSize must be positive: " + numBlocks + ", " + blockSize);
		}
		if ((long) numBlocks * blockSize > Integer.MAX_VALUE) {
			throw new IllegalArgumentException(numBlocks + " blocks of " + blockSize + " tokens exceed 2^31 slots");
		}
		this.numBlocks = numBlocks;
		this.blockSize = blockSize;
		refCount = new int[numBlocks];
		prev = new int[numBlocks + 1];
		next = new int[numBlocks + 1];
		hashed = new boolean[numBlocks];
		hash = new long[numBlocks];
		parentHash = new long[numBlocks];
		tokens = new int[numBlocks * blockSize];
		index = new LongIntMap(Math.min(numBlocks, 1 << 16));
		int s = numBlocks;
		next[s] = s;
		prev[s] = s;
		int[] order = new int[numBlocks];
		for (int b = 0; b < numBlocks; b++) {
			order[b] = b;
		}
		if (shuffleSeed != 0) {
			java.util.Random r = new java.util.Random(shuffleSeed);
			for (int i = numBlocks - 1; i > 0; i--) {
				int j = r.nextInt(i + 1);
				int x = order[i];
				order[i] = order[j];
				order[j] = x;
			}
		}
		for (int b : order) {
			linkBefore(b, s);
		}
	}

	public int numBlocks() {
		return numBlocks;
	}

	public int blockSize() {
		return blockSize;
	}

	/** Blocks that can be allocated now: free ones and cached ones (which allocation evicts). */
	public int numFree() {
		return numFree;
	}

	public long evictions() {
		return evictions;
	}

	public int refCount(int block) {
		return refCount[block];
	}

	public boolean isHashed(int block) {
		return hashed[block];
	}

	public byte state(int block) {
		return refCount[block] > 0 ? USED : hashed[block] ? CACHED : FREE;
	}

	/** Takes the head of the free queue, evicting its cached content if any; its count becomes 1. */
	public int allocate() {
		if (numFree == 0) {
			throw new IllegalStateException("no free KV block (all " + numBlocks + " in use)");
		}
		int b = next[numBlocks];
		unlink(b);
		if (hashed[b]) {
			unregister(b);
			evictions++;
		}
		refCount[b] = 1;
		return b;
	}

	/** Adds a holder to a block; a cached block leaves the free queue (a prefix-cache hit). */
	public void touch(int block) {
		if (refCount[block]++ == 0) {
			unlink(block);
		}
	}

	/** Drops a holder; at zero the block returns to the queue, reusable if it is hashed. */
	public void release(int block) {
		if (refCount[block] <= 0) {
			throw new IllegalStateException("block " + block + " released more often than held");
		}
		if (--refCount[block] == 0) {
			if (hashed[block]) {
				linkBefore(block, numBlocks); // tail: evicted after blocks freed earlier
			}
			else {
				linkBefore(block, next[numBlocks]); // head: holds nothing worth keeping
			}
		}
	}

	/**
	 * The cached block holding {@code toks[from..from+blockSize)} after a parent hashing to {@code parent},
	 * or -1. Tokens and parent hash are compared, not only the hash.
	 */
	public int lookup(long blockHash, long parent, int[] toks, int from) {
		int b = index.get(blockHash);
		if (b < 0 || parentHash[b] != parent
				|| !Arrays.equals(tokens, b * blockSize, (b + 1) * blockSize, toks, from, from + blockSize)) {
			return -1;
		}
		return b;
	}

	/**
	 * Records that a used block now holds a full block of tokens under {@code blockHash}. If another block
	 * already holds that content, this one stays unhashed (it is a duplicate and will be recycled first).
	 */
	public boolean register(int block, long blockHash, long parent, int[] toks, int from) {
		if (hashed[block]) {
			return hash[block] == blockHash;
		}
		if (index.get(blockHash) >= 0) {
			return false;
		}
		hashed[block] = true;
		hash[block] = blockHash;
		parentHash[block] = parent;
		System.arraycopy(toks, from, tokens, block * blockSize, blockSize);
		index.put(blockHash, block);
		return true;
	}

	public long hashOf(int block) {
		return hash[block];
	}

	private void unregister(int b) {
		index.remove(hash[b]);
		hashed[b] = false;
	}

	private void unlink(int b) {
		next[prev[b]] = next[b];
		prev[next[b]] = prev[b];
		numFree--;
	}

	private void linkBefore(int b, int at) {
		int p = prev[at];
		next[p] = b;
		prev[b] = p;
		next[b] = at;
		prev[at] = b;
		numFree++;
	}

	/** Checks the pool's own invariants; throws {@link IllegalStateException} naming the first violation. */
	public void checkInvariants() {
		int s = numBlocks;
		int count = 0;
		int last = s;
		for (int b = next[s]; b != s; b = next[b]) {
			if (b < 0 || b >= numBlocks || prev[b] != last) {
				throw new IllegalStateException("free queue corrupt at block " + b);
			}
			if (refCount[b] != 0) {
				throw new IllegalStateException("block " + b + " is queued with reference count " + refCount[b]);
			}
			last = b;
			if (++count > numBlocks) {
				throw new IllegalStateException("free queue has a cycle");
			}
		}
		if (count != numFree) {
			throw new IllegalStateException("free queue holds " + count + " blocks, numFree says " + numFree);
		}
		int unreferenced = 0;
		for (int b = 0; b < numBlocks; b++) {
			if (refCount[b] < 0) {
				throw new IllegalStateException("block " + b + " has reference count " + refCount[b]);
			}
			if (refCount[b] == 0) {
				unreferenced++;
			}
			if (hashed[b]) {
				if (index.get(hash[b]) != b) {
					throw new IllegalStateException("hashed block " + b + " is not in the index");
				}
				if (BlockHasher.hash(parentHash[b], tokens, b * blockSize, blockSize) != hash[b]) {
					throw new IllegalStateException("block " + b + " holds tokens that do not hash to its hash");
				}
			}
		}
		if (unreferenced != numFree) {
			throw new IllegalStateException(unreferenced + " blocks have reference count 0 but " + numFree + " are queued");
		}
		index.forEach((h, b) -> {
			if (!hashed[b] || hash[b] != h) {
				throw new IllegalStateException("index maps a hash to block " + b + ", which does not hold it");
			}
		});
	}
}
