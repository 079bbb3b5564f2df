package dev.blockserve.kvcache;

import java.util.Arrays;

/** Pending copy-on-write block copies (src[i] to dst[i]) that the engine performs before the next forward. Filled by the scheduler and read by the model runner, both on the engine thread. */
public final class BlockCopies {

	int[] src = new int[8];

	int[] dst = new int[8];

	int count;

	void add(int s, int d) {
		if (count == src.length) {
			src = Arrays.copyOf(src, count * 2);
			dst = Arrays.copyOf(dst, count * 2);
		}
		src[count] = s;
		dst[count] = d;
		count++;
	}

	public int count() {
		return count;
	}

	public int[] src() {
		return src;
	}

	public int[] dst() {
		return dst;
	}

	public void clear() {
		count = 0;
	}
}
