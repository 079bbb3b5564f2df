package dev.blockserve.support;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import dev.blockserve.engine.OfflineGenerator;

/** Hands out a cache's blocks in a seeded random order, so sequences never sit in contiguous blocks. */
public final class ShuffledBlocks implements OfflineGenerator.BlockSource {

	private final ArrayDeque<Integer> free = new ArrayDeque<>();

	private final Set<Integer> used = new HashSet<>();

	private final int total;

	public ShuffledBlocks(int numBlocks, long seed) {
		List<Integer> ids = new ArrayList<>();
		for (int i = 0; i < numBlocks; i++) {
			ids.add(i);
		}
		Collections.shuffle(ids, new Random(seed));
		free.addAll(ids);
		total = numBlocks;
	}

	@Override
	public int allocate() {
		Integer b = free.poll();
		if (b == null) {
			throw new IllegalStateException("out of blocks");
		}
		used.add(b);
		return b;
	}

	@Override
	public void free(int block) {
		if (!used.remove(block)) {
			throw new IllegalStateException("block " + block + " freed but not in use");
		}
		free.addLast(block);
	}

	public int inUse() {
		return used.size();
	}

	public int total() {
		return total;
	}
}
