package dev.blockserve.backend;

import static dev.blockserve.backend.Backend.need;

/**
 * The CPU implementation of {@link Backend}: host memory from {@code aligned_alloc}, kernels in
 * libblockserve_cpu (C++17, OpenMP, vectorised for the build machine). F32 weights are used in place
 * from the memory-mapped file, so loading costs no copy and the page cache holds one copy of them.
 */
public final class CpuBackend extends NativeBackend {

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

	@Override
	protected long rawAlloc(long bytes) {
		return CpuNative.alloc(bytes);
	}

	@Override
	protected void rawFree(long address) {
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

	@Override
	protected void rawWriteInts(long dst, int[] src, int n) {
		CpuNative.writeInts(dst, src, 0, n);
	}

	@Override
	protected void rawWriteFloats(long dst, float[] src, int n) {
		CpuNative.writeFloats(dst, src, 0, n);
	}

	@Override
	protected void rawReadInts(long src, int[] dst, int n) {
		CpuNative.readInts(src, dst, 0, n);
	}

	@Override
	protected void rawReadFloats(long src, float[] dst, int dstOffset, int n) {
		CpuNative.readFloats(src, dst, dstOffset, n);
	}

	@Override
	protected void rawEmbedding(long out, long table, long ids, long n, long dim, long rows) {
		CpuNative.embedding(out, table, ids, n, dim, rows);
	}

	@Override
	protected void rawRmsnorm(long out, long x, long w, long n, long dim, float eps) {
		CpuNative.rmsnorm(out, x, w, n, dim, eps);
	}

	@Override
	protected void checkedMatmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		CpuNative.matmul(out.address(this), x.address(this), w.address(this), n, k, m);
	}

	@Override
	protected void rawRope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos) {
		CpuNative.rope(x, pos, cosSin, n, heads, headDim, maxPos);
	}

	@Override
	protected void rawSiluMul(long out, long gate, long up, long count) {
		CpuNative.siluMul(out, gate, up, count);
	}

	@Override
	protected void rawAdd(long x, long y, long count) {
		CpuNative.add(x, y, count);
	}

	@Override
	protected void rawKvWrite(long kCache, long vCache, long k, long v, long slots, long n, long kvHeads, long headDim,
			long numSlots) {
		CpuNative.kvWrite(kCache, vCache, k, v, slots, n, kvHeads, headDim, numSlots);
	}

	@Override
	protected void rawPagedAttention(long out, long q, long kCache, long vCache, long blockTables, long maxBlocksPerSeq,
			long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim,
			long blockSize, long numBlocks, float scale) {
		CpuNative.pagedAttention(out, q, kCache, vCache, blockTables, maxBlocksPerSeq, seqLens, queryStart, numSeqs,
				numTokens, numHeads, numKvHeads, headDim, blockSize, numBlocks, scale);
	}

	@Override
	protected void rawBlockCopy(long kCache, long vCache, long src, long dst, long n, long blockElems, long numBlocks) {
		CpuNative.blockCopy(kCache, vCache, src, dst, n, blockElems, numBlocks);
	}

	@Override
	protected void rawArgmax(long out, long logits, long n, long vocab) {
		CpuNative.argmax(out, logits, n, vocab);
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
