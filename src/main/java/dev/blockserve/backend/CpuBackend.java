package dev.blockserve.backend;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import static dev.blockserve.backend.Backend.need;

/**
 * The CPU implementation of {@link Backend}: host memory from {@code aligned_alloc}, kernels in
 * libblockserve_cpu (C++17, OpenMP, vectorised for the build machine). F32 weights are used in place
 * from the memory-mapped file, so loading costs no copy and the page cache holds one copy of them.
 */
public final class CpuBackend implements Backend {

	private final ConcurrentHashMap<Long, Long> live = new ConcurrentHashMap<>();

	private final AtomicLong liveBytes = new AtomicLong();

	/** @param threads kernel threads; 0 for one per available processor */
	public CpuBackend(int threads) {
		if (threads < 0) {
			throw new IllegalArgumentException("threads must be >= 0, got " + threads);
		}
		CpuNative.setThreads(threads);
	}

	@Override
	public String name() {
		return "cpu";
	}

	public int threads() {
		return CpuNative.threads();
	}

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
		long a = CpuNative.alloc(bytes);
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
		CpuNative.free(address);
	}

	@Override
	public NativeBuffer loadWeight(long hostAddress, DType type, long elements) {
		switch (type) {
			case F32:
				if ((hostAddress & 3) == 0) {
					return new NativeBuffer(this, hostAddress, elements, DType.F32, false);
				}
				NativeBuffer copy = allocate(elements, DType.F32);
				CpuNative.copy(copy.address(this), hostAddress, elements * 4);
				return copy;
			case F16:
			case BF16:
				NativeBuffer out = allocate(elements, DType.F32);
				if (type == DType.F16) {
					CpuNative.f16ToF32(out.address(this), hostAddress, elements);
				}
				else {
					CpuNative.bf16ToF32(out.address(this), hostAddress, elements);
				}
				return out;
			default:
				throw new IllegalArgumentException("weights of type " + type + " are not supported");
		}
	}

	/** A view of host memory as a buffer (no ownership); for memory this process mapped itself. */
	public NativeBuffer view(long hostAddress, long elements, DType type) {
		return new NativeBuffer(this, hostAddress, elements, type, false);
	}

	@Override
	public void upload(NativeBuffer dst, int[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, DType.I32, "upload");
		CpuNative.writeInts(dst.address(this), src, 0, n);
	}

	@Override
	public void upload(NativeBuffer dst, float[] src, int n) {
		checkArray(src.length, n);
		need(dst, n, "upload");
		CpuNative.writeFloats(dst.address(this), src, 0, n);
	}

	@Override
	public void download(NativeBuffer src, float[] dst, int n) {
		checkArray(dst.length, n);
		need(src, n, "download");
		CpuNative.readFloats(src.address(this), dst, 0, n);
	}

	@Override
	public void download(NativeBuffer src, int[] dst, int n) {
		checkArray(dst.length, n);
		need(src, n, DType.I32, "download");
		CpuNative.readInts(src.address(this), dst, 0, n);
	}

	@Override
	public void download(NativeBuffer src, long srcOffset, float[] dst, int dstOffset, int n) {
		if (srcOffset < 0 || dstOffset < 0 || n < 0 || dstOffset + (long) n > dst.length) {
			throw new IllegalArgumentException("download of " + n + " floats to offset " + dstOffset + " of an array of "
					+ dst.length + " from offset " + srcOffset);
		}
		need(src, srcOffset + n, "download");
		CpuNative.readFloats(src.address(this) + srcOffset * 4, dst, dstOffset, n);
	}

	private static void checkArray(int length, int n) {
		if (n < 0 || n > length) {
			throw new IllegalArgumentException("transfer of " + n + " elements with an array of " + length);
		}
	}

	@Override
	public void embedding(NativeBuffer out, NativeBuffer table, NativeBuffer ids, int n, int dim) {
		need(out, (long) n * dim, "embedding out");
		need(ids, n, DType.I32, "embedding ids");
		CpuNative.embedding(out.address(this), table.address(this), ids.address(this), n, dim, table.elements() / dim);
	}

	@Override
	public void rmsNorm(NativeBuffer out, NativeBuffer x, NativeBuffer weight, int n, int dim, float eps) {
		need(out, (long) n * dim, "rmsnorm out");
		need(x, (long) n * dim, "rmsnorm x");
		need(weight, dim, "rmsnorm weight");
		CpuNative.rmsnorm(out.address(this), x.address(this), weight.address(this), n, dim, eps);
	}

	@Override
	public void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		need(out, (long) n * m, "matmul out");
		need(x, (long) n * k, "matmul x");
		need(w, (long) m * k, "matmul w");
		CpuNative.matmul(out.address(this), x.address(this), w.address(this), n, k, m);
	}

	@Override
	public void rope(NativeBuffer x, NativeBuffer positions, NativeBuffer cosSin, int n, int heads, int headDim) {
		need(x, (long) n * heads * headDim, "rope x");
		need(positions, n, DType.I32, "rope positions");
		CpuNative.rope(x.address(this), positions.address(this), cosSin.address(this), n, heads, headDim,
				cosSin.elements() / headDim);
	}

	@Override
	public void siluMul(NativeBuffer out, NativeBuffer gate, NativeBuffer up, long count) {
		need(out, count, "silu_mul out");
		need(gate, count, "silu_mul gate");
		need(up, count, "silu_mul up");
		CpuNative.siluMul(out.address(this), gate.address(this), up.address(this), count);
	}

	@Override
	public void add(NativeBuffer x, NativeBuffer y, long count) {
		need(x, count, "add x");
		need(y, count, "add y");
		CpuNative.add(x.address(this), y.address(this), count);
	}

	@Override
	public void kvWrite(KvCacheMemory cache, int layer, NativeBuffer k, NativeBuffer v, NativeBuffer slots, int n) {
		long row = (long) cache.kvHeads() * cache.headDim();
		need(k, n * row, "kv_write k");
		need(v, n * row, "kv_write v");
		need(slots, n, DType.I32, "kv_write slots");
		CpuNative.kvWrite(cache.k(layer).address(this), cache.v(layer).address(this), k.address(this),
				v.address(this), slots.address(this), n, cache.kvHeads(), cache.headDim(),
				(long) cache.numBlocks() * cache.blockSize());
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
		CpuNative.pagedAttention(out.address(this), q.address(this), cache.k(layer).address(this),
				cache.v(layer).address(this), blockTables.address(this), maxBlocksPerSeq, seqLens.address(this),
				queryStart.address(this), numSeqs, numTokens, numHeads, cache.kvHeads(), cache.headDim(), cache.blockSize(),
				cache.numBlocks(), scale);
	}

	@Override
	public void blockCopy(KvCacheMemory cache, NativeBuffer src, NativeBuffer dst, int n) {
		need(src, n, DType.I32, "block_copy src");
		need(dst, n, DType.I32, "block_copy dst");
		for (int l = 0; l < cache.layers(); l++) {
			CpuNative.blockCopy(cache.k(l).address(this), cache.v(l).address(this), src.address(this),
					dst.address(this), n, cache.blockElements(), cache.numBlocks());
		}
	}

	@Override
	public void argmax(NativeBuffer out, NativeBuffer logits, int n, int vocab) {
		need(out, n, DType.I32, "argmax out");
		need(logits, (long) n * vocab, "argmax logits");
		CpuNative.argmax(out.address(this), logits.address(this), n, vocab);
	}

	/** Reads {@code floats} values at all threads' speed; returns a checksum (bandwidth probe). */
	public double streamRead(NativeBuffer b, long floats) {
		need(b, floats, "stream_read");
		return CpuNative.streamRead(b.address(this), floats);
	}

	@Override
	public void close() {
		// Buffers are closed by their owners; nothing global to release.
	}
}
