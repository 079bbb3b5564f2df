package dev.blockserve.kvcache;

import java.util.Arrays;

/**
 * An open-addressing map from long to non-negative int (linear probing, backward-shift deletion): the
 * prefix cache's hash index and the grammar engine's stack interning, without boxing. Not thread-safe: its
 * owner's thread only (the pool's and the grammar runtime's: the engine thread).
 */
public final class LongIntMap {

	private static final int EMPTY = -1;

	private long[] keys;

	private int[] values;

	private int size;

	private int mask;

	public LongIntMap(int expected) {
		int cap = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
		keys = new long[cap];
		values = new int[cap];
		Arrays.fill(values, EMPTY);
		mask = cap - 1;
	}

	private static int spread(long k) {
		long h = k * 0x9E3779B97F4A7C15L;
		return (int) (h ^ (h >>> 32));
	}

	/** The value, or -1 when absent. */
	public int get(long key) {
		for (int i = spread(key) & mask;; i = (i + 1) & mask) {
			if (values[i] == EMPTY) {
				return EMPTY;
			}
			if (keys[i] == key) {
				return values[i];
			}
		}
	}

	public void put(long key, int value) {
		if ((size + 1) * 2 > keys.length) {
			grow();
		}
		for (int i = spread(key) & mask;; i = (i + 1) & mask) {
			if (values[i] == EMPTY) {
				keys[i] = key;
				values[i] = value;
				size++;
				return;
			}
			if (keys[i] == key) {
				values[i] = value;
				return;
			}
		}
	}

	/** Removes the key; returns its value or -1. */
	int remove(long key) {
		int i = spread(key) & mask;
		while (true) {
			if (values[i] == EMPTY) {
				return EMPTY;
			}
			if (keys[i] == key) {
				break;
			}
			i = (i + 1) & mask;
		}
		int old = values[i];
		// backward-shift: move later entries of the probe run into the hole
		int hole = i;
		for (int j = (i + 1) & mask; values[j] != EMPTY; j = (j + 1) & mask) {
			int home = spread(keys[j]) & mask;
			if (((j - home) & mask) >= ((j - hole) & mask)) {
				keys[hole] = keys[j];
				values[hole] = values[j];
				hole = j;
			}
		}
		values[hole] = EMPTY;
		size--;
		return old;
	}

	public int size() {
		return size;
	}

	/** Calls {@code f} for every entry (for invariant checks and snapshots). */
	void forEach(LongIntConsumer f) {
		for (int i = 0; i < keys.length; i++) {
			if (values[i] != EMPTY) {
				f.accept(keys[i], values[i]);
			}
		}
	}

	interface LongIntConsumer {

		void accept(long key, int value);
	}

	private void grow() {
		long[] ok = keys;
		int[] ov = values;
		keys = new long[ok.length * 2];
		values = new int[ov.length * 2];
		Arrays.fill(values, EMPTY);
		mask = keys.length - 1;
		size = 0;
		for (int i = 0; i < ok.length; i++) {
			if (ov[i] != EMPTY) {
				put(ok[i], ov[i]);
			}
		}
	}
}
