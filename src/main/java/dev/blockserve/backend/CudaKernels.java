package dev.blockserve.backend;

/**
 * The kernels of libblockserve_cuda (native/cuda/cuda_kernels.cu) on device memory, plus the device
 * queries only a GPU has. Its JNI_OnLoad binds the instance methods; the static ones are looked up by name.
 * Called by the engine thread only, like the backend.
 */
final class CudaKernels implements Kernels {

	static {
		NativeLibrary.load("blockserve_cuda");
	}

	@Override
	public native long alloc(long bytes);

	@Override
	public native void free(long address);

	@Override
	public native void writeInts(long dst, int[] src, int n);

	@Override
	public native void writeFloats(long dst, float[] src, int n);

	@Override
	public native void readInts(long src, int[] dst, int n);

	@Override
	public native void readFloats(long src, float[] dst, int offset, int n);

	@Override
	public native void loadWeight(long out, long host, int dtypeCode, long n);

	@Override
	public native void embedding(long out, long table, int tableDtype, long ids, long n, long dim, long rows);

	@Override
	public native void rmsnorm(long out, long x, long w, long n, long dim, float eps);

	@Override
	public native void matmul(long out, long x, long w, int wDtype, long n, long k, long m);

	@Override
	public native void rope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos);

	@Override
	public native void siluMul(long out, long gate, long up, long count);

	@Override
	public native void add(long x, long y, long count);

	@Override
	public native void biasAdd(long x, long bias, long n, long dim);

	@Override
	public native void kvWrite(long kCache, long vCache, int kvDtype, long k, long v, long slots, long n, long kvHeads,
			long headDim, long numSlots);

	@Override
	public native void pagedAttention(long out, long q, long kCache, long vCache, int kvDtype, long blockTables,
			long maxBlocksPerSeq, long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim,
			long blockSize, long numBlocks, float scale, long window);

	@Override
	public native void blockCopy(long kCache, long vCache, int kvDtype, long src, long dst, long n, long blockElems,
			long numBlocks);

	@Override
	public native void argmax(long out, long logits, long n, long vocab);

	static native int deviceCount();

	/** "name|major.minor|freeBytes|totalBytes" */
	static native String deviceInfo(int device);

	static native void setDevice(int device);

	static native long freeMemory();

	/** true: matmuls use a BF16 twin of each weight (FP32 accumulation); false: FP32 throughout. */
	static native void setBf16Matmul(boolean on);

	/** "cublas" or "wmma" (BF16 matmul implementation). */
	static native String matmulImpl();

	/** Frees the library's scratch and BF16 weight twins. */
	static native void releaseScratch();
}
