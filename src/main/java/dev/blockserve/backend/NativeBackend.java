package dev.blockserve.backend;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import static dev.blockserve.backend.Backend.need;

/**
 * What every native backend shares: allocation bookkeeping (so leaks show in {@link #liveBytes()}) and the
 * size checks of each op, done in Java before any native code runs. Subclasses implement the raw calls on
 * addresses.
 */
abstract class NativeBackend implements Backend {

	private final ConcurrentHashMap<Long, Long> live = new ConcurrentHashMap<>();

	private final AtomicLong liveBytes = new AtomicLong();

	/** Bytes allocated by this backend and not yet freed (leak checks in tests, metrics). */
	public long liveBytes() {
		return liveBytes.get();
	}

	protected abstract long rawAlloc(long bytes);

	protected abstract void rawFree(long address);

	@Override
	public NativeBuffer allocate(long elements, DType type) {
		if (elements <= 0) {
			throw new IllegalArgumentException("allocate: element count must be positive, got " + elements);
		}
		long bytes = Math.multiplyExact(elements, (long) type.bytes());
		long a = rawAlloc(bytes);
		live.put(a, bytes);
		liveBytes.addAndGet(bytes);
		return new NativeBuffer(this, a, elements, type, true);
	}

	@Override
	public void free(long address) {
		Long bytes = live.remove(address);
		if (bytes == null) {
			throw new IllegalStateException("free of an address this backend did not allocate");
		}
		liveBytes.addAndGet(-bytes);
		rawFree(address);
	}

	// ---- transfers

	protected abstract void rawWriteInts(long dst, int[] src, int n);

	protected abstract void rawWriteFloats(long dst, float[] src, int n);

	protected abstract void rawReadInts(long src, int[] dst, int n);

	protected abstract void rawReadFloats(long src, float[] dst, int dstOffset, int n);

	@Override
	public void upload(NativeBuffer dst, int[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, DType.I32, "upload");
		if (n > 0) {
			rawWriteInts(dst.address(this), src, n);
		}
	}

	@Override
	public void upload(NativeBuffer dst, float[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, "upload");
		if (n > 0) {
			rawWriteFloats(dst.address(this), src, n);
		}
	}

	@Override
	public void download(NativeBuffer src, float[] dst, int n) {
		download(src, 0, dst, 0, n);
	}

	@Override
	public void download(NativeBuffer src, int[] dst, int n) {
		checkArray(dst.length, n);
		need(src, n, DType.I32, "download");
		rawReadInts(src.address(this), dst, n);
	}

	@Override
	public void download(NativeBuffer src, long srcOffset, float[] dst, int dstOffset, int n) {
		if (srcOffset < 0 || dstOffset < 0 || n < 0 || dstOffset + (long) n > dst.length) {
			throw new IllegalArgumentException("download of " + n + " floats to offset " + dstOffset + " of an array of "
					+ dst.length + " from offset " + srcOffset);
		}
		need(src, srcOffset + n, "download");
		rawReadFloats(src.address(this) + srcOffset * 4, dst, dstOffset, n);
	}

	private static void checkArray(int length, int n) {
		if (n < 0 || n > length) {
			throw new IllegalArgumentException("transfer of " + n + " elements with an array of " + length);
		}
	}

	// ---- ops

	protected abstract void rawEmbedding(long out, long table, long ids, long n, long dim, long rows);

	protected abstract void rawRmsnorm(long out, long x, long w, long n, long dim, float eps);

	/** The matmul after its checks; gets buffers, since a backend may keep per-weight state. */
	protected abstract void checkedMatmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m);

	protected abstract void rawRope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos);

	protected abstract void rawSiluMul(long out, long gate, long up, long count);

	protected abstract void rawAdd(long x, long y, long count);

	protected abstract void rawKvWrite(long kCache, long vCache, long k, long v, long slots, long n, long kvHeads,
			long headDim, long numSlots);

	protected abstract void rawPagedAttention(long out, long q, long kCache, long vCache, long blockTables,
			long maxBlocksPerSeq, long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads,
			long numKvHeads, long headDim, long blockSize, long numBlocks, float scale);

	protected abstract void rawBlockCopy(long kCache, long vCache, long src, long dst, long n, long blockElems,
			long numBlocks);

	protected abstract void rawArgmax(long out, long logits, long n, long vocab);

	@Override
	public void embedding(NativeBuffer out, NativeBuffer table, NativeBuffer ids, int n, int dim) {
		need(out, (long) n * dim, "embedding out");
		need(ids, n, DType.I32, "embedding ids");
		rawEmbedding(out.address(this), table.address(this), ids.address(this), n, dim, table.elements() / dim);
	}

	@Override
	public void rmsNorm(NativeBuffer out, NativeBuffer x, NativeBuffer weight, int n, int dim, float eps) {
		need(out, (long) n * dim, "rmsnorm out");
		need(x, (long) n * dim, "rmsnorm x");
		need(weight, dim, "rmsnorm weight");
		rawRmsnorm(out.address(this), x.address(this), weight.address(this), n, dim, eps);
	}

	@Override
	public void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		need(out, (long) n * m, "matmul out");
		need(x, (long) n * k, "matmul x");
		need(w, (long) m * k, "matmul w");
		checkedMatmul(out, x, w, n, k, m);
	}

	@Override
	public void rope(NativeBuffer x, NativeBuffer positions, NativeBuffer cosSin, int n, int heads, int headDim) {
		need(x, (long) n * heads * headDim, "rope x");
		need(positions, n, DType.I32, "rope positions");
		rawRope(x.address(this), positions.address(this), cosSin.address(this), n, heads, headDim,
				cosSin.elements() / headDim);
	}

	@Override
	public void siluMul(NativeBuffer out, NativeBuffer gate, NativeBuffer up, long count) {
		need(out, count, "silu_mul out");
		need(gate, count, "silu_mul gate");
		need(up, count, "silu_mul up");
		rawSiluMul(out.address(this), gate.address(this), up.address(this), count);
	}

	@Override
	public void add(NativeBuffer x, NativeBuffer y, long count) {
		need(x, count, "add x");
		need(y, count, "add y");
		rawAdd(x.address(this), y.address(this), count);
	}

	@Override
	public void kvWrite(KvCacheMemory cache, int layer, NativeBuffer k, NativeBuffer v, NativeBuffer slots, int n) {
		long row = (long) cache.kvHeads() * cache.headDim();
		need(k, n * row, "kv_write k");
		need(v, n * row, "kv_write v");
		need(slots, n, DType.I32, "kv_write slots");
		rawKvWrite(cache.k(layer).address(this), cache.v(layer).address(this), k.address(this), v.address(this),
				slots.address(this), n, cache.kvHeads(), cache.headDim(), (long) cache.numBlocks() * cache.blockSize());
	}

	@Override
	public void pagedAttention(NativeBuffer out, NativeBuffer q, KvCacheMemory cache, int layer,
			NativeBuffer blockTables, int maxBlocksPerSeq, NativeBuffer seqLens, NativeBuffer queryStart, int numSeqs,
			int numTokens, int numHeads, float scale) {
		need(blockTables, (long) numSeqs * maxBlocksPerSeq, DType.I32, "paged_attention block tables");
		need(seqLens, numSeqs, DType.I32, "paged_attention seq lens");
		need(queryStart, numSeqs + 1L, DType.I32, "paged_attention query start");
		long rows = (long) numTokens * numHeads * cache.headDim();
		need(q, rows, "paged_attention q");
		need(out, rows, "paged_attention out");
		// The kernel checks queryStart[numSeqs] == numTokens, so the sizes checked here are the ones used.
		rawPagedAttention(out.address(this), q.address(this), cache.k(layer).address(this),
				cache.v(layer).address(this), blockTables.address(this), maxBlocksPerSeq, seqLens.address(this),
				queryStart.address(this), numSeqs, numTokens, numHeads, cache.kvHeads(), cache.headDim(),
				cache.blockSize(), cache.numBlocks(), scale);
	}

	@Override
	public void blockCopy(KvCacheMemory cache, NativeBuffer src, NativeBuffer dst, int n) {
		need(src, n, DType.I32, "block_copy src");
		need(dst, n, DType.I32, "block_copy dst");
		for (int l = 0; l < cache.layers(); l++) {
			rawBlockCopy(cache.k(l).address(this), cache.v(l).address(this), src.address(this), dst.address(this), n,
					cache.blockElements(), cache.numBlocks());
		}
	}

	@Override
	public void argmax(NativeBuffer out, NativeBuffer logits, int n, int vocab) {
		need(out, n, DType.I32, "argmax out");
		need(logits, (long) n * vocab, "argmax logits");
		rawArgmax(out.address(this), logits.address(this), n, vocab);
	}
}
