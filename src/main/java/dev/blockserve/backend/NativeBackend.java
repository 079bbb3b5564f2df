package dev.blockserve.backend;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import static dev.blockserve.backend.Backend.need;

/**
 * What every native backend shares: allocation bookkeeping (so leaks show in {@link #liveBytes()}) and the
 * size checks of each op, done in Java before any native code runs; then each op calls its
 * {@link Kernels} method once, which is the native function. Subclasses add what their device alone has.
 * Ops are called by the engine thread only; {@link #liveBytes} may be read from any thread.
 */
abstract class NativeBackend implements Backend {

	/** The kernel library: the one path from an op to native code. */
	protected final Kernels kernels;

	protected NativeBackend(Kernels kernels) {
		this.kernels = kernels;
	}

	private final ConcurrentHashMap<Long, Long> live = new ConcurrentHashMap<>();

	private final AtomicLong liveBytes = new AtomicLong();

	/** Bytes allocated by this backend and not yet freed (leak checks in tests, metrics). */
	public long liveBytes() {
		return liveBytes.get();
	}



	@Override
	public NativeBuffer allocate(long elements, DType type) {
		if (elements <= 0) {
			throw new IllegalArgumentException("allocate: element count must be positive, got " + elements);
		}
		long bytes = Math.multiplyExact(elements, (long) type.bytes());
		long a = kernels.alloc(bytes);
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
		kernels.free(address);
	}

	/** Copies a host weight (a memory-mapped file) into a new buffer of this backend, widened to F32. */
	@Override
	public NativeBuffer loadWeight(long hostAddress, DType type, long elements) {
		int code = Kernels.dtypeCode(type);
		NativeBuffer out = allocate(elements, DType.F32);
		try {
			kernels.loadWeight(out.address(this), hostAddress, code, elements);
			return out;
		}
		catch (RuntimeException e) {
			out.close();
			throw e;
		}
	}

	// ---- transfers





	@Override
	public void upload(NativeBuffer dst, int[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, DType.I32, "upload");
		if (n > 0) {
			kernels.writeInts(dst.address(this), src, n);
		}
	}

	@Override
	public void upload(NativeBuffer dst, float[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, "upload");
		if (n > 0) {
			kernels.writeFloats(dst.address(this), src, n);
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
		kernels.readInts(src.address(this), dst, n);
	}

	@Override
	public void download(NativeBuffer src, long srcOffset, float[] dst, int dstOffset, int n) {
		if (srcOffset < 0 || dstOffset < 0 || n < 0 || dstOffset + (long) n > dst.length) {
			throw new IllegalArgumentException("download of " + n + " floats to offset " + dstOffset + " of an array of "
					+ dst.length + " from offset " + srcOffset);
		}
		need(src, srcOffset + n, "download");
		kernels.readFloats(src.address(this) + srcOffset * 4, dst, dstOffset, n);
	}

	private static void checkArray(int length, int n) {
		if (n < 0 || n > length) {
			throw new IllegalArgumentException("transfer of " + n + " elements with an array of " + length);
		}
	}

	// ---- ops











	@Override
	public void embedding(NativeBuffer out, NativeBuffer table, NativeBuffer ids, int n, int dim) {
		need(out, (long) n * dim, "embedding out");
		need(ids, n, DType.I32, "embedding ids");
		kernels.embedding(out.address(this), table.address(this), Kernels.dtypeCode(table.type()), ids.address(this), n, dim,
				table.elements() / dim);
	}

	@Override
	public void rmsNorm(NativeBuffer out, NativeBuffer x, NativeBuffer weight, int n, int dim, float eps) {
		need(out, (long) n * dim, "rmsnorm out");
		need(x, (long) n * dim, "rmsnorm x");
		need(weight, dim, "rmsnorm weight");
		kernels.rmsnorm(out.address(this), x.address(this), weight.address(this), n, dim, eps);
	}

	@Override
	public void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		need(out, (long) n * m, "matmul out");
		need(x, (long) n * k, "matmul x");
		need(w, (long) m * k, w.type(), "matmul w");
		kernels.matmul(out.address(this), x.address(this), w.address(this), Kernels.dtypeCode(w.type()), n, k, m);
	}

	@Override
	public void rope(NativeBuffer x, NativeBuffer positions, NativeBuffer cosSin, int n, int heads, int headDim) {
		need(x, (long) n * heads * headDim, "rope x");
		need(positions, n, DType.I32, "rope positions");
		kernels.rope(x.address(this), positions.address(this), cosSin.address(this), n, heads, headDim,
				cosSin.elements() / headDim);
	}

	@Override
	public void siluMul(NativeBuffer out, NativeBuffer gate, NativeBuffer up, long count) {
		need(out, count, "silu_mul out");
		need(gate, count, "silu_mul gate");
		need(up, count, "silu_mul up");
		kernels.siluMul(out.address(this), gate.address(this), up.address(this), count);
	}

	@Override
	public void add(NativeBuffer x, NativeBuffer y, long count) {
		need(x, count, "add x");
		need(y, count, "add y");
		kernels.add(x.address(this), y.address(this), count);
	}

	@Override
	public void biasAdd(NativeBuffer x, NativeBuffer bias, int n, int dim) {
		need(x, (long) n * dim, "bias_add x");
		need(bias, dim, "bias_add bias");
		kernels.biasAdd(x.address(this), bias.address(this), n, dim);
	}

	@Override
	public void kvWrite(KvCacheMemory cache, int layer, NativeBuffer k, NativeBuffer v, NativeBuffer slots, int n) {
		long row = (long) cache.kvHeads() * cache.headDim();
		need(k, n * row, "kv_write k");
		need(v, n * row, "kv_write v");
		need(slots, n, DType.I32, "kv_write slots");
		kernels.kvWrite(cache.k(layer).address(this), cache.v(layer).address(this), cache.dtypeCode(), k.address(this),
				v.address(this), slots.address(this), n, cache.kvHeads(), cache.headDim(), (long) cache.numBlocks() * cache.blockSize());
	}

	@Override
	public void pagedAttention(NativeBuffer out, NativeBuffer q, KvCacheMemory cache, int layer,
			NativeBuffer blockTables, int maxBlocksPerSeq, NativeBuffer seqLens, NativeBuffer queryStart, int numSeqs,
			int numTokens, int numHeads, float scale, int window) {
		need(blockTables, (long) numSeqs * maxBlocksPerSeq, DType.I32, "paged_attention block tables");
		need(seqLens, numSeqs, DType.I32, "paged_attention seq lens");
		need(queryStart, numSeqs + 1L, DType.I32, "paged_attention query start");
		long rows = (long) numTokens * numHeads * cache.headDim();
		need(q, rows, "paged_attention q");
		need(out, rows, "paged_attention out");
		// The kernel checks queryStart[numSeqs] == numTokens, so the sizes checked here are the ones used.
		kernels.pagedAttention(out.address(this), q.address(this), cache.k(layer).address(this),
				cache.v(layer).address(this), cache.dtypeCode(), blockTables.address(this), maxBlocksPerSeq, seqLens.address(this),
				queryStart.address(this), numSeqs, numTokens, numHeads, cache.kvHeads(), cache.headDim(),
				cache.blockSize(), cache.numBlocks(), scale, window);
	}

	@Override
	public void blockCopy(KvCacheMemory cache, NativeBuffer src, NativeBuffer dst, int n) {
		need(src, n, DType.I32, "block_copy src");
		need(dst, n, DType.I32, "block_copy dst");
		for (int l = 0; l < cache.layers(); l++) {
			kernels.blockCopy(cache.k(l).address(this), cache.v(l).address(this), cache.dtypeCode(), src.address(this),
					dst.address(this), n, cache.blockElements(), cache.numBlocks());
		}
	}

	@Override
	public void argmax(NativeBuffer out, NativeBuffer logits, int n, int vocab) {
		need(out, n, DType.I32, "argmax out");
		need(logits, (long) n * vocab, "argmax logits");
		kernels.argmax(out.address(this), logits.address(this), n, vocab);
	}
}
