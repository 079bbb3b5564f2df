package dev.blockserve.kvcache;

import java.util.Arrays;

/**
 * One sequence's logical-to-physical map: entry i is the physical block holding its tokens
 * [i*blockSize, (i+1)*blockSize). Also remembers how far its full blocks have been hashed into the
 * prefix cache, so each block is hashed once. Outside this package it is an opaque handle that is passed
 * back to the {@link KvCacheManager}; its contents are read only to build a step's input. Owned by the
 * engine thread, like the manager.
 */
public final class BlockTable {

	/** The entry of a block freed because it fell out of the sliding window: no physical block. */
	public static final int SKIPPED = -1;

	final long requestId;

	int[] blocks = new int[8];

	int size;

	/** Leading entries freed by a sliding window ({@link #SKIPPED}). */
	int numSkipped;

	/** Leading blocks already registered in the prefix cache, and the hash of the last of them. */
	int numHashed;

	long lastHash;

	/** The root its chain of block hashes starts from: the model's, or its cache salt's. */
	final long root;

	BlockTable(long requestId, long root) {
		this.requestId = requestId;
		this.root = root;
		this.lastHash = root;
	}

	public long requestId() {
		return requestId;
	}

	/** Logical blocks, the skipped ones included. */
	public int size() {
		return size;
	}

	/** Physical blocks the table holds: its size less the leading entries a sliding window freed. */
	public int numHeld() {
		return size - numSkipped;
	}

	public int block(int i) {
		if (i >= size) {
			throw new IndexOutOfBoundsException(i + " of " + size);
		}
		return blocks[i];
	}

	/** Copies the block ids, in logical order, into {@code dst[offset..offset+size())}; returns size(). */
	public int copyTo(int[] dst, int offset) {
		System.arraycopy(blocks, 0, dst, offset, size);
		return size;
	}

	void add(int block) {
		if (size == blocks.length) {
			blocks = Arrays.copyOf(blocks, size * 2);
		}
		blocks[size++] = block;
	}

	@Override
	public String toString() {
		return "BlockTable[" + requestId + ": " + Arrays.toString(Arrays.copyOf(blocks, size)) + "]";
	}
}
