package dev.blockserve.backend;

/**
 * The kernel libraries seen from Java: one method per function of the C contract
 * (native/include/bs_kernels.h), on raw addresses of the library's memory. {@link CpuKernels} and
 * {@link CudaKernels} implement it with instance native methods bound by one JNI bridge
 * (native/src/jni_kernels.inc), so an op goes from {@link NativeBackend}'s checks straight into C.
 * Nothing here checks sizes: callers must ({@link NativeBackend} does). A kernel's rejection arrives as
 * a {@link BackendException}. Called by the engine thread only, like the backend.
 */
interface Kernels {

	long alloc(long bytes);

	void free(long address);

	void writeInts(long dst, int[] src, int n);

	void writeFloats(long dst, float[] src, int n);

	void readInts(long src, int[] dst, int n);

	void readFloats(long src, float[] dst, int offset, int n);

	/** Widens {@code n} values of {@code dtypeCode} (0 F32, 1 F16, 2 BF16) at host address {@code host} into {@code out}. */
	void loadWeight(long out, long host, int dtypeCode, long n);

	/** {@code table} holds values of {@code tableDtype} (see {@link #dtypeCode}); out is F32. */
	void embedding(long out, long table, int tableDtype, long ids, long n, long dim, long rows);

	void rmsnorm(long out, long x, long w, long n, long dim, float eps);

	/** {@code w} holds values of {@code wDtype} (see {@link #dtypeCode}), widened to F32 in registers. */
	void matmul(long out, long x, long w, int wDtype, long n, long k, long m);

	void rope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos);

	void siluMul(long out, long gate, long up, long count);

	void add(long x, long y, long count);

	void biasAdd(long x, long bias, long n, long dim);

	/** The caches hold values of {@code kvDtype} (see {@link #dtypeCode}); k and v are F32, narrowed on the way in. */
	void kvWrite(long kCache, long vCache, int kvDtype, long k, long v, long slots, long n, long kvHeads, long headDim,
			long numSlots);

	void pagedAttention(long out, long q, long kCache, long vCache, int kvDtype, long blockTables, long maxBlocksPerSeq,
			long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim,
			long blockSize, long numBlocks, float scale, long window);

	void blockCopy(long kCache, long vCache, int kvDtype, long src, long dst, long n, long blockElems, long numBlocks);

	void argmax(long out, long logits, long n, long vocab);

	/** The code {@link #loadWeight} takes for a weight type. */
	static int dtypeCode(DType t) {
		return switch (t) {
			case F32 -> 0;
			case F16 -> 1;
			case BF16 -> 2;
			default -> throw new IllegalArgumentException("weights of type " + t + " are not supported");
		};
	}
}
