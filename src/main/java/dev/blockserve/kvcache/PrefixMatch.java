package dev.blockserve.kvcache;

import java.util.Arrays;

/**
 * The cached blocks that a new request's prompt starts with, found by {@link KvCacheManager#matchPrefix}
 * and adopted by {@link KvCacheManager#allocate}. Reusable: one instance serves every admission.
 * Reused scratch of the scheduler: engine thread only.
 */
public final class PrefixMatch {

	int[] blocks = new int[16];

	long[] hashes = new long[16];

	int numBlocks;

	int queriedTokens;

	long lastHash;

	/** The root the match was made from: only a table of the same root may adopt it. */
	long root;

	public int numBlocks() {
		return numBlocks;
	}

	/** Tokens whose KV the matched blocks already hold. */
	public int cachedTokens(int blockSize) {
		return numBlocks * blockSize;
	}

	void clear(long root) {
		numBlocks = 0;
		queriedTokens = 0;
		lastHash = root;
		this.root = root;
	}

	void add(int block, long hash) {
		if (numBlocks == blocks.length) {
			blocks = Arrays.copyOf(blocks, numBlocks * 2);
			hashes = Arrays.copyOf(hashes, numBlocks * 2);
		}
		hashes[numBlocks] = hash;
		blocks[numBlocks++] = block;
	}
}
