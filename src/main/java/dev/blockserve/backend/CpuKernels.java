package dev.blockserve.backend;

/**
 * The kernels of libblockserve_cpu (native/src/cpu_kernels.cpp) on host memory, plus what only the CPU
 * library offers. Its JNI_OnLoad binds the instance methods; the static ones are looked up by name.
 */
final class CpuKernels implements Kernels {

	/** Instruction set levels the build has kernels for, best first (native/CMakeLists.txt). */
	static final java.util.List<String> LEVELS = java.util.List.of("avx512bf16", "avx512", "avx2", "baseline");

	/** The folder holding libblockserve_cpu and its per-level kernel libraries. */
	private static final java.nio.file.Path DIR;

	static {
		DIR = NativeLibrary.load("blockserve_cpu", LEVELS.stream().map(l -> "blockserve_cpu_" + l).toList());
	}

	/**
	 * Makes {@code level} ("auto" for the best this CPU runs) the kernels every call uses; throws with the
	 * reason when the CPU lacks it or it is unknown. Call it while no kernel runs.
	 */
	static synchronized void select(String level) {
		String error = selectLevel(DIR.toString(), level == null ? "auto" : level);
		if (error != null) {
			throw new BackendException(error);
		}
	}

	private static native String selectLevel(String dir, String level);

	/** The selected level's name. */
	static native String level();

	/** The levels this CPU runs, best first, comma-separated. */
	static native String supportedLevels();

	/** Rounds n floats at {@code in} to BF16 at {@code out} (nearest even). */
	static native void roundToBf16(long out, long in, long n);

	/**
	 * BF16 matrices multiply activations rounded to BF16 when on; false when the
	 * selected level cannot (no AVX-512 BF16). Process-wide, for the selected level.
	 */
	static native boolean setBf16Activations(boolean on);

	/** One core's peak in GFLOP/s over {@code seconds}: F32 FMA, or with bf16 the BF16 dot product (0 where absent). */
	static native double peakGflops(boolean bf16, double seconds);

	/** Bytes a BF16 matrix of m rows of k takes packed to 12 bits a weight; 0 where this level or CPU cannot. */
	static native long packedBf16Bytes(long k, long m);

	/** Packs the BF16 matrix w (m rows of k) into dst, which holds {@link #packedBf16Bytes} bytes. */
	static native void packBf16(long dst, long w, long k, long m);

	/** out[1, m] = x[1, k] . w^T from w's packed form, bit for bit what matmul gives (w serves rows left unpacked). */
	static native void matmulPackedBf16(long out, long x, long packed, long w, long k, long m);

	/** {@link #matmulPackedBf16} for two or three packed matrices sharing x, as one op (out3 0: two). */
	static native void matmulPackedBf16N(long x, long k, long out1, long packed1, long w1, long m1, long out2, long packed2,
			long w2, long m2, long out3, long packed3, long w3, long m3);

	/** See {@link HostMath#expSum}; callers check the bounds. NaN when no level is selected. */
	static native double expSum(float[] in, int inOffset, float[] out, int outOffset, int n, float shift, float scale);

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

	/** Kernel threads; 0 for one per available processor. */
	static native void setThreads(int n);

	static native int threads();

	/** Threads alive that have run a kernel able to open an OpenMP parallel region (each keeps a libgomp team). */
	static native int teamThreads();

	/** Maps a whole file read-only and returns its address. */
	static native long mapFile(String path, long length);

	static native void unmap(long address, long length);

	/** madvise(MADV_HUGEPAGE) on a mapping: pages faulted in later come in 2 MiB folios where the file system can. */
	static native boolean adviseHugePages(long address, long length);

	/** Faults every page of a read-only mapping in now. */
	static native void populate(long address, long length);

	/**
	 * Copies a file mapping's bytes into read-only anonymous memory advised to huge pages, releasing the
	 * source's pages as it goes; returns the copy's address (its mapped length is length rounded up to 2 MiB).
	 */
	static native long copyToHugePages(long source, long length);

	/** Drops the file's clean pages that no process maps from the page cache; false where it cannot. */
	static native boolean dropPageCache(String path);

	/** Reads {@code count} floats with all threads; returns a checksum (bandwidth probe). */
	static native double streamRead(long address, long count);
}
