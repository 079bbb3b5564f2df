package dev.blockserve.backend;

/** The JNI surface of libblockserve_cuda (native/cuda/jni_cuda.cpp); addresses are device pointers. */
final class CudaNative {

	static {
		NativeLibrary.load("blockserve_cuda");
	}

	private CudaNative() {
	}

	static native int deviceCount();

	static native String deviceInfo(int device);

	static native void setDevice(int device);

	static native long freeMemory();

	static native long alloc(long bytes);

	static native void free(long address);

	/** kind: 1 host to device, 2 device to host, 3 device to device */
	static native void copy(long dst, long src, long bytes, int kind);

	static native void writeInts(long dst, int[] src, int n);

	static native void writeFloats(long dst, float[] src, int n);

	static native void readFloats(long src, float[] dst, int offset, int n);

	static native void readInts(long src, int[] dst, int n);

	static native void checkError();

	static native void f32ToBf16(long out, long in, long n);

	static native void bf16ToF32(long out, long in, long n);

	static native void f16ToF32(long out, long in, long n);

	static native void embedding(long out, long table, long ids, long n, long dim, long rows);

	static native void rmsnorm(long out, long x, long w, long n, long dim, float eps);

	static native void matmul(long out, long x, long xBf16, long wBf16, long n, long k, long m);

	static native void matmulF32(long out, long x, long w, long n, long k, long m);

	static native String matmulImpl();

	static native void rope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos);

	static native void siluMul(long out, long gate, long up, long count);

	static native void add(long x, long y, long count);

	static native void kvWrite(long kCache, long vCache, long k, long v, long slots, long n, long kvHeads, long headDim,
			long numSlots);

	static native long attentionScratchFloats(long numSeqs, long numHeads, long headDim, long maxContext);

	static native void pagedAttention(long out, long q, long kCache, long vCache, long blockTables, long maxBlocksPerSeq,
			long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim,
			long blockSize, long numBlocks, float scale, long scratch);

	static native void blockCopy(long kCache, long vCache, long src, long dst, long n, long blockElems, long numBlocks);

	static native void argmax(long out, long logits, long n, long vocab);
}
