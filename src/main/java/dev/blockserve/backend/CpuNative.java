package dev.blockserve.backend;

/**
 * The JNI surface of libblockserve_cpu (native/src/jni_cpu.cpp). Addresses are raw native pointers;
 * callers check bounds first ({@link CpuBackend} does), since C++ cannot.
 */
final class CpuNative {

	static {
		NativeLibrary.load("blockserve_cpu");
	}

	private CpuNative() {
	}

	static native void setThreads(int n);

	static native int threads();

	static native long alloc(long bytes);

	static native void free(long address);

	static native long mapFile(String path, long length);

	static native void unmap(long address, long length);

	static native long addressOf(java.nio.ByteBuffer directBuffer);

	static native void copy(long dst, long src, long bytes);

	static native void writeInts(long dst, int[] src, int offset, int n);

	static native void writeFloats(long dst, float[] src, int offset, int n);

	static native void readFloats(long src, float[] dst, int offset, int n);

	static native void readInts(long src, int[] dst, int offset, int n);

	static native void embedding(long out, long table, long ids, long n, long dim, long rows);

	static native void rmsnorm(long out, long x, long w, long n, long dim, float eps);

	static native void matmul(long out, long x, long w, long n, long k, long m);

	static native void rope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos);

	static native void siluMul(long out, long gate, long up, long count);

	static native void add(long x, long y, long count);

	static native void kvWrite(long kCache, long vCache, long k, long v, long slots, long n, long kvHeads, long headDim,
			long numSlots);

	static native void pagedAttention(long out, long q, long kCache, long vCache, long blockTables, long maxBlocksPerSeq,
			long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim, long blockSize,
			long numBlocks, float scale);

	static native void blockCopy(long kCache, long vCache, long src, long dst, long n, long blockElems, long numBlocks);

	static native void argmax(long out, long logits, long n, long vocab);

	static native void f16ToF32(long out, long in, long n);

	static native void bf16ToF32(long out, long in, long n);

	static native double streamRead(long address, long count);
}
