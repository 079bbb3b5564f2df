package dev.blockserve.backend;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The native paged-attention kernel against a plain Java reference on random inputs: head dims
 * 8/16/64/128, block sizes 1/8/16/32, GQA ratios 1/2/4, random block tables, context lengths and
 * query lengths in one mixed batch; F32 caches and the 16-bit ones (BF16, F16).
 */
class PagedAttentionTest {

	static CpuBackend backend;

	@BeforeAll
	static void open() {
		backend = new CpuBackend(0);
	}

	@AfterAll
	static void close() {
		assertThat(backend.liveBytes()).as("native bytes leaked by the tests").isZero();
		backend.close();
	}

	/** A random mixed batch: its inputs, and the cache filled with random K/V for the touched blocks. */
	static final class Batch {

		int numSeqs, numTokens, maxBlocks, numBlocks, blockSize, kvHeads, heads, headDim;

		int[] seqLens, queryStart, tables;

		float[] q, kCache, vCache;

		Batch(Random r, int headDim, int blockSize, int group, int numSeqs) {
			this.headDim = headDim;
			this.blockSize = blockSize;
			this.numSeqs = numSeqs;
			kvHeads = 1 + r.nextInt(3);
			heads = kvHeads * group;
			seqLens = new int[numSeqs];
			queryStart = new int[numSeqs + 1];
			int totalBlocks = 0;
			for (int s = 0; s < numSeqs; s++) {
				seqLens[s] = 1 + r.nextInt(90);
				int ql = r.nextInt(4) == 0 ? 1 + r.nextInt(seqLens[s]) : 1; // decode mostly, some prefill chunks
				queryStart[s + 1] = queryStart[s] + ql;
				int nb = (seqLens[s] + blockSize - 1) / blockSize;
				maxBlocks = Math.max(maxBlocks, nb);
				totalBlocks += nb;
			}
			numTokens = queryStart[numSeqs];
			numBlocks = totalBlocks + 5;
			List<Integer> ids = new ArrayList<>();
			for (int i = 0; i < numBlocks; i++) {
				ids.add(i);
			}
			Collections.shuffle(ids, r);
			tables = new int[numSeqs * maxBlocks];
			int next = 0;
			for (int s = 0; s < numSeqs; s++) {
				int nb = (seqLens[s] + blockSize - 1) / blockSize;
				for (int b = 0; b < nb; b++) {
					tables[s * maxBlocks + b] = ids.get(next++);
				}
			}
			q = rand(r, numTokens * heads * headDim);
			kCache = rand(r, numBlocks * blockSize * kvHeads * headDim);
			vCache = rand(r, numBlocks * blockSize * kvHeads * headDim);
		}

		float[] reference(float scale) {
			return reference(scale, 0);
		}

		/** Attention in doubles; with window > 0, query position p attends to p-window < j <= p only. */
		float[] reference(float scale, int window) {
			float[] out = new float[numTokens * heads * headDim];
			int group = heads / kvHeads;
			for (int s = 0; s < numSeqs; s++) {
				int ql = queryStart[s + 1] - queryStart[s];
				for (int t = queryStart[s]; t < queryStart[s + 1]; t++) {
					int visible = seqLens[s] - ql + (t - queryStart[s]) + 1;
					int lo = window > 0 ? Math.max(0, visible - window) : 0;
					for (int h = 0; h < heads; h++) {
						int kh = h / group;
						double[] p = new double[visible];
						double max = Double.NEGATIVE_INFINITY;
						for (int j = lo; j < visible; j++) {
							int base = slot(s, j) * kvHeads * headDim + kh * headDim;
							double dot = 0;
							for (int d = 0; d < headDim; d++) {
								dot += (double) q[(t * heads + h) * headDim + d] * kCache[base + d];
							}
							p[j] = dot * scale;
							max = Math.max(max, p[j]);
						}
						double sum = 0;
						for (int j = lo; j < visible; j++) {
							p[j] = Math.exp(p[j] - max);
							sum += p[j];
						}
						for (int d = 0; d < headDim; d++) {
							double o = 0;
							for (int j = lo; j < visible; j++) {
								o += p[j] / sum * vCache[slot(s, j) * kvHeads * headDim + kh * headDim + d];
							}
							out[(t * heads + h) * headDim + d] = (float) o;
						}
					}
				}
			}
			return out;
		}

		int slot(int s, int j) {
			return tables[s * maxBlocks + j / blockSize] * blockSize + j % blockSize;
		}

		float[] run(float scale) {
			return run(scale, 0);
		}

		float[] run(float scale, int window) {
			return run(scale, window, DType.F32);
		}

		/**
		 * Runs the kernel on a cache of {@code kvType}. An F32 cache is uploaded as is; a 16-bit one is
		 * filled by kv_write (which rounds), token by token in a shuffled slot order, after which
		 * kCache/vCache hold the rounded values the reference must use.
		 */
		float[] run(float scale, int window, DType kvType) {
			try (KvCacheMemory cache = new KvCacheMemory(backend, 1, numBlocks, blockSize, kvHeads, headDim, kvType);
					NativeBuffer qb = backend.allocate(q.length, DType.F32);
					NativeBuffer out = backend.allocate(q.length, DType.F32);
					NativeBuffer tb = backend.allocate(tables.length, DType.I32);
					NativeBuffer sl = backend.allocate(numSeqs, DType.I32);
					NativeBuffer qs = backend.allocate(numSeqs + 1, DType.I32)) {
				if (kvType == DType.F32) {
					backend.upload(cache.k(0), kCache, kCache.length);
					backend.upload(cache.v(0), vCache, vCache.length);
				}
				else {
					writeThroughKvWrite(cache, kvType);
				}
				backend.upload(qb, q, q.length);
				backend.upload(tb, tables, tables.length);
				backend.upload(sl, seqLens, numSeqs);
				backend.upload(qs, queryStart, numSeqs + 1);
				backend.pagedAttention(out, qb, cache, 0, tb, maxBlocks, sl, qs, numSeqs, numTokens, heads, scale, window);
				float[] result = new float[q.length];
				backend.download(out, result, result.length);
				return result;
			}
		}

		private void writeThroughKvWrite(KvCacheMemory cache, DType kvType) {
			int slots = numBlocks * blockSize, row = kvHeads * headDim;
			List<Integer> order = new ArrayList<>();
			for (int i = 0; i < slots; i++) {
				order.add(i);
			}
			Collections.shuffle(order, new Random(slots));
			float[] k = new float[slots * row], v = new float[slots * row];
			int[] slotOf = new int[slots];
			for (int i = 0; i < slots; i++) {
				int s = order.get(i);
				slotOf[i] = s;
				System.arraycopy(kCache, s * row, k, i * row, row);
				System.arraycopy(vCache, s * row, v, i * row, row);
			}
			try (NativeBuffer kb = backend.allocate(k.length, DType.F32);
					NativeBuffer vb = backend.allocate(v.length, DType.F32);
					NativeBuffer sb = backend.allocate(slots, DType.I32)) {
				backend.upload(kb, k, k.length);
				backend.upload(vb, v, v.length);
				backend.upload(sb, slotOf, slots);
				backend.kvWrite(cache, 0, kb, vb, sb, slots);
			}
			for (int i = 0; i < kCache.length; i++) {
				kCache[i] = rounded(kCache[i], kvType);
				vCache[i] = rounded(vCache[i], kvType);
			}
		}
	}

	/** The nearest BF16 or F16 value to x (finite), ties to even, F16 saturating at 65504: the reference's rounding. */
	static float rounded(float x, DType t) {
		double a = Math.abs(x);
		if (a == 0) {
			return x;
		}
		if (t == DType.F16 && a > 65504) {
			return Math.copySign(65504f, x);
		}
		int mantissaBits = t == DType.BF16 ? 7 : 10;
		int e = Math.max(Math.getExponent(a), t == DType.BF16 ? -126 : -14); // below: subnormal, a fixed step
		double ulp = Math.scalb(1.0, e - mantissaBits);
		return (float) Math.copySign(Math.rint(a / ulp) * ulp, x);
	}

	static float[] rand(Random r, int n) {
		float[] a = new float[n];
		for (int i = 0; i < n; i++) {
			a[i] = r.nextFloat() * 2 - 1;
		}
		return a;
	}

	@ParameterizedTest(name = "headDim={0} blockSize={1} gqa={2}")
	@CsvSource({ "8,1,1", "8,8,2", "8,16,4", "8,32,1", "16,1,2", "16,8,4", "16,16,1", "16,32,2", "64,1,4", "64,8,1",
			"64,16,2", "64,32,4", "128,1,1", "128,8,2", "128,16,4", "128,32,2", "64,16,1", "128,32,4" })
	void matchesReference(int headDim, int blockSize, int group) {
		Random r = new Random(headDim * 1000L + blockSize * 10L + group);
		for (int trial = 0; trial < 3; trial++) {
			Batch b = new Batch(r, headDim, blockSize, group, 1 + r.nextInt(6));
			float scale = (float) (1 / Math.sqrt(headDim));
			float[] expected = b.reference(scale);
			float[] actual = b.run(scale);
			float worst = 0;
			for (int i = 0; i < expected.length; i++) {
				worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
			}
			assertThat(worst).as("max abs error, trial %d", trial).isLessThanOrEqualTo(1e-4f);
		}
	}

	/**
	 * GQA groups of every size the kernels split into steps of up to four heads (3 as SmolLM2, 7 as
	 * Qwen2.5-0.5B, 5, 6), head sizes the vector width does and does not divide, and both ways the
	 * kernel splits work: by KV head (one decode token) and a whole token per item (a decode batch).
	 */
	@ParameterizedTest(name = "headDim={0} blockSize={1} gqa={2} seqs={3}")
	@CsvSource({ "64,16,3,1", "64,16,3,12", "64,16,7,1", "64,16,7,12", "128,16,3,12", "128,32,5,12", "32,16,6,12",
			"16,8,5,1", "24,8,3,12", "40,16,7,12", "128,16,7,12", "256,16,2,12" })
	void groupsOfEverySizeMatchReference(int headDim, int blockSize, int group, int numSeqs) {
		Random r = new Random(headDim * 1000L + blockSize * 10L + group + 7 * numSeqs);
		for (int trial = 0; trial < 3; trial++) {
			Batch b = new Batch(r, headDim, blockSize, group, numSeqs);
			float scale = (float) (1 / Math.sqrt(headDim));
			float[] expected = b.reference(scale);
			float[] actual = b.run(scale);
			float worst = 0;
			for (int i = 0; i < expected.length; i++) {
				worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
			}
			assertThat(worst).as("max abs error, trial %d", trial).isLessThanOrEqualTo(1e-4f);
		}
	}

	/**
	 * Sliding-window attention (Mistral) against the reference, with every block wholly before each
	 * sequence's first window replaced by an invalid id: the kernel must not read them (a KV manager may
	 * have freed them).
	 */
	@ParameterizedTest(name = "window={0} blockSize={1} gqa={2}")
	@CsvSource({ "1,1,1", "8,4,2", "8,16,1", "9,8,4", "37,16,2", "64,32,1", "3,1,4" })
	void slidingWindowMatchesReferenceAndSkipsBlocksOutsideIt(int window, int blockSize, int group) {
		Random r = new Random(window * 7919L + blockSize * 31L + group);
		for (int trial = 0; trial < 3; trial++) {
			Batch b = new Batch(r, 16, blockSize, group, 1 + r.nextInt(6));
			float scale = 0.25f;
			float[] expected = b.reference(scale, window);
			for (int s = 0; s < b.numSeqs; s++) {
				int ql = b.queryStart[s + 1] - b.queryStart[s];
				int firstKey = Math.max(0, b.seqLens[s] - ql + 1 - window);
				for (int blk = 0; blk < firstKey / blockSize; blk++) {
					b.tables[s * b.maxBlocks + blk] = -1; // never read
				}
			}
			float[] actual = b.run(scale, window);
			float worst = 0;
			for (int i = 0; i < expected.length; i++) {
				worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
			}
			assertThat(worst).as("max abs error, trial %d", trial).isLessThanOrEqualTo(1e-4f);
		}
	}

	/**
	 * 16-bit caches (blockserve.kv-cache.dtype bf16/f16): kv_write rounds each value to nearest even, and
	 * attention over the cache equals the reference over those rounded values (to float32 summation),
	 * including a sliding window whose earlier blocks are invalid.
	 */
	@ParameterizedTest(name = "{0} headDim={1} blockSize={2} gqa={3} window={4}")
	@CsvSource({ "BF16,8,1,1,0", "BF16,16,8,2,0", "BF16,64,16,4,0", "BF16,128,32,2,0", "BF16,64,16,2,9", "BF16,20,4,1,0",
			"F16,8,8,2,0", "F16,16,1,1,0", "F16,64,16,2,0", "F16,128,16,4,0", "F16,64,8,1,37", "F16,20,16,2,0" })
	void sixteenBitCachesMatchTheReferenceOnTheirRoundedValues(DType kvType, int headDim, int blockSize, int group,
			int window) {
		Random r = new Random(headDim * 1000L + blockSize * 10L + group + kvType.ordinal());
		for (int trial = 0; trial < 3; trial++) {
			Batch b = new Batch(r, headDim, blockSize, group, 1 + r.nextInt(6));
			float scale = (float) (1 / Math.sqrt(headDim));
			if (window > 0) {
				for (int s = 0; s < b.numSeqs; s++) {
					int ql = b.queryStart[s + 1] - b.queryStart[s];
					int firstKey = Math.max(0, b.seqLens[s] - ql + 1 - window);
					for (int blk = 0; blk < firstKey / blockSize; blk++) {
						b.tables[s * b.maxBlocks + blk] = -1; // never read
					}
				}
			}
			float[] actual = b.run(scale, window, kvType); // rounds b's caches as the kernel did
			float[] expected = b.reference(scale, window);
			float worst = 0;
			for (int i = 0; i < expected.length; i++) {
				worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
			}
			assertThat(worst).as("max abs error, trial %d", trial).isLessThanOrEqualTo(1e-4f);
		}
	}

	/** block_copy moves whole blocks of a 16-bit cache: attention through the copies equals attention through the originals. */
	@ParameterizedTest
	@CsvSource({ "BF16", "F16" })
	void blockCopyOfSixteenBitCaches(DType kvType) {
		int blockSize = 4, kvHeads = 2, headDim = 16, heads = 4, len = 10;
		Random r = new Random(5);
		float[] k = rand(r, 3 * blockSize * kvHeads * headDim), v = rand(r, 3 * blockSize * kvHeads * headDim);
		float[] q = rand(r, heads * headDim);
		try (KvCacheMemory cache = new KvCacheMemory(backend, 1, 6, blockSize, kvHeads, headDim, kvType);
				NativeBuffer kb = backend.allocate(k.length, DType.F32);
				NativeBuffer vb = backend.allocate(v.length, DType.F32);
				NativeBuffer slots = backend.allocate(3 * blockSize, DType.I32);
				NativeBuffer qb = backend.allocate(q.length, DType.F32);
				NativeBuffer out = backend.allocate(q.length, DType.F32);
				NativeBuffer table = backend.allocate(3, DType.I32);
				NativeBuffer lens = backend.allocate(1, DType.I32);
				NativeBuffer qs = backend.allocate(2, DType.I32);
				NativeBuffer src = backend.allocate(3, DType.I32);
				NativeBuffer dst = backend.allocate(3, DType.I32)) {
			int[] slotIds = new int[3 * blockSize];
			for (int i = 0; i < slotIds.length; i++) {
				slotIds[i] = i; // blocks 0, 1, 2
			}
			backend.upload(kb, k, k.length);
			backend.upload(vb, v, v.length);
			backend.upload(slots, slotIds, slotIds.length);
			backend.kvWrite(cache, 0, kb, vb, slots, slotIds.length);
			backend.upload(qb, q, q.length);
			backend.upload(lens, new int[] { len }, 1);
			backend.upload(qs, new int[] { 0, 1 }, 2);
			backend.upload(table, new int[] { 0, 1, 2 }, 3);
			backend.pagedAttention(out, qb, cache, 0, table, 3, lens, qs, 1, 1, heads, 0.25f, 0);
			float[] original = new float[q.length];
			backend.download(out, original, original.length);

			backend.upload(src, new int[] { 0, 1, 2 }, 3);
			backend.upload(dst, new int[] { 5, 3, 4 }, 3);
			backend.blockCopy(cache, src, dst, 3);
			backend.upload(table, new int[] { 5, 3, 4 }, 3);
			backend.pagedAttention(out, qb, cache, 0, table, 3, lens, qs, 1, 1, heads, 0.25f, 0);
			float[] copied = new float[q.length];
			backend.download(out, copied, copied.length);
			assertThat(copied).containsExactly(original);
		}
	}

	/** An F16 cache saturates at +-65504: a key or value beyond F16's range leaves attention finite, not NaN. */
	@Test
	void anF16CacheSaturatesInsteadOfOverflowing() {
		Batch b = new Batch(new Random(11), 16, 4, 2, 2);
		for (int i = 0; i < 16; i++) {
			b.kCache[i] = 1e6f * (i % 2 == 0 ? 1 : -1); // slot 0, first KV head: far beyond 65504
			b.vCache[i] = -3e5f;
		}
		b.tables[0] = 0; // sequence 0 reads slot 0
		float[] out = b.run(0.25f, 0, DType.F16);
		for (float x : out) {
			assertThat(Float.isFinite(x)).as("attention output over a saturated F16 cache").isTrue();
		}
		assertThat(b.kCache[0]).isEqualTo(65504f);
	}

	@Test
	void aKvCacheHoldsOnlyFloatTypes() {
		assertThatThrownBy(() -> new KvCacheMemory(backend, 1, 2, 4, 1, 8, DType.I32))
			.isInstanceOf(IllegalArgumentException.class)
			.hasMessageContaining("F32, BF16 or F16");
		assertThat(KvCacheMemory.parseType("BFloat16")).isEqualTo(DType.BF16);
		assertThat(KvCacheMemory.parseType("fp16")).isEqualTo(DType.F16);
		assertThatThrownBy(() -> KvCacheMemory.parseType("fp8")).hasMessage(
				"blockserve.kv-cache.dtype must be f32, bf16 or f16, got 'fp8'");
		assertThat(KvCacheMemory.bytesPerBlock(30, 16, 3, 64, DType.BF16) * 2)
			.isEqualTo(KvCacheMemory.bytesPerBlock(30, 16, 3, 64, DType.F32));
	}

	@Test
	void rejectsBlockIdOutsideTheCache() {
		Batch b = new Batch(new Random(1), 16, 8, 2, 2);
		b.tables[0] = b.numBlocks + 3;
		assertThatThrownBy(() -> b.run(0.25f)).isInstanceOf(BackendException.class)
			.hasMessageContaining("outside [0, " + b.numBlocks + ")");
	}

	@Test
	void rejectsMoreQueryTokensThanCachedTokens() {
		Batch b = new Batch(new Random(2), 8, 4, 1, 1);
		b.seqLens[0] = 0;
		assertThatThrownBy(() -> b.run(0.25f)).isInstanceOf(BackendException.class)
			.hasMessageContaining("fewer than its");
	}

	@Test
	void rejectsUndersizedBuffersBeforeNativeCode() {
		try (NativeBuffer small = backend.allocate(4, DType.F32); NativeBuffer w = backend.allocate(64, DType.F32)) {
			assertThatThrownBy(() -> backend.matmul(small, w, w, 2, 8, 8)).isInstanceOf(IllegalArgumentException.class)
				.hasMessageContaining("matmul out");
		}
	}

	@Test
	void rejectsSlotOutsideTheCache() {
		try (KvCacheMemory cache = new KvCacheMemory(backend, 1, 2, 4, 1, 8);
				NativeBuffer k = backend.allocate(8, DType.F32);
				NativeBuffer slots = backend.allocate(1, DType.I32)) {
			backend.upload(slots, new int[] { 8 }, 1);
			assertThatThrownBy(() -> backend.kvWrite(cache, 0, k, k, slots, 1)).isInstanceOf(BackendException.class)
				.hasMessageContaining("slot 8");
		}
	}

	@Test
	void closedBufferCannotBeUsed() {
		NativeBuffer b = backend.allocate(8, DType.F32);
		b.close();
		assertThatThrownBy(() -> backend.add(b, b, 8)).isInstanceOf(IllegalStateException.class);
	}
}
