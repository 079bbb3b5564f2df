package dev.blockserve.backend;

/**
 * The kernel library seen from Java: memory, transfers and the model's ops over {@link NativeBuffer}s.
 * Owned by the engine thread: ops are called from it alone.
 * One implementation per native library (CPU, CUDA); the Llama graph in {@code model} calls only this
 * interface, so the same graph runs on either. Shapes are row-major; see native/README.md for the
 * exact contract of each op. Every op checks that its buffers are large enough, and a rejection by the
 * native code arrives as a {@link BackendException}.
 */
public interface Backend extends AutoCloseable {

	/** Where a backend's memory lives, for the choices that depend on it (cache sizing, step budgets). */
	enum Kind {
		CPU, CUDA;

		/** Whether the backend has memory of its own (a GPU) rather than the host's. */
		public boolean hasDeviceMemory() {
			return this != CPU;
		}
	}

	/** A short name for logs ("cpu", "cuda"). */
	String name();

	Kind kind();

	/** Device memory free now, in bytes, for sizing the KV cache; -1 where memory is the host's. */
	long freeDeviceMemory();

	/** A zeroed buffer of {@code elements} values of {@code type}. */
	NativeBuffer allocate(long elements, DType type);

	/** Frees memory of a buffer this backend allocated; called by {@link NativeBuffer#close()}. */
	void free(long address);

	/**
	 * Makes a weight tensor usable as F32 by this backend from host memory at {@code hostAddress} (a
	 * memory-mapped file) holding {@code elements} values of {@code type}. The CPU backend may return a
	 * view of the mapping itself; the caller must keep the mapping alive as long as the buffer.
	 */
	NativeBuffer loadWeight(long hostAddress, DType type, long elements);

	/**
	 * Makes a weight matrix usable by {@link #matmul} and {@link #embedding}, held as {@code policy} says
	 * where this backend multiplies that type; by default widened to F32 like {@link #loadWeight}.
	 */
	default NativeBuffer loadMatrix(long hostAddress, DType type, long elements, WeightType policy) {
		return loadWeight(hostAddress, type, elements);
	}

	/**
	 * May add to a weight matrix (rows x cols, from {@link #loadMatrix}) a second form that {@link #matmul}
	 * reads when x has one row: the same results, fewer bytes to read a token. Returns the bytes added (0:
	 * none). The form lives and is freed with the matrix.
	 */
	default long packForDecode(NativeBuffer matrix, int rows, int cols) {
		return 0;
	}

	/** Where weight files should be read from: a backend that uploads them maps them as they are. */
	default WeightPages weightPages() {
		return WeightPages.MAPPED;
	}

	void upload(NativeBuffer dst, int[] src, int n);

	void upload(NativeBuffer dst, float[] src, int n);

	void download(NativeBuffer src, float[] dst, int n);

	void download(NativeBuffer src, int[] dst, int n);

	/** Copies {@code n} floats starting at element {@code srcOffset} of {@code src} into {@code dst[dstOffset..]}. */
	void download(NativeBuffer src, long srcOffset, float[] dst, int dstOffset, int n);

	/** out[i,:] = table[ids[i],:] for i below n; rows of table of width dim (any matrix type); also a row gather. */
	void embedding(NativeBuffer out, NativeBuffer table, NativeBuffer ids, int n, int dim);

	void rmsNorm(NativeBuffer out, NativeBuffer x, NativeBuffer weight, int n, int dim, float eps);

	/** out[n,m] = x[n,k] . w[m,k]^T; w may be any type {@link #loadMatrix} returned, x and out are F32 */
	void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m);

	/**
	 * The products of one x with two or three matrices (q, k and v; gate and up): out_i = x . w_i^T for
	 * each, as {@link #matmul} makes them, so the results are the same. {@code out3} and {@code w3} may be
	 * null (two products). A backend may make them as one op; this default makes them one by one.
	 */
	default void matmulSameInput(NativeBuffer x, int n, int k, NativeBuffer out1, NativeBuffer w1, int m1, NativeBuffer out2,
			NativeBuffer w2, int m2, NativeBuffer out3, NativeBuffer w3, int m3) {
		matmul(out1, x, w1, n, k, m1);
		matmul(out2, x, w2, n, k, m2);
		if (out3 != null) {
			matmul(out3, x, w3, n, k, m3);
		}
	}

	/** Rotary embedding in place on x[n, heads, headDim] with the table cosSin[maxPos, headDim]. */
	void rope(NativeBuffer x, NativeBuffer positions, NativeBuffer cosSin, int n, int heads, int headDim);

	void siluMul(NativeBuffer out, NativeBuffer gate, NativeBuffer up, long count);

	void add(NativeBuffer x, NativeBuffer y, long count);

	/** x[i,:] += bias for each of the n rows of x [n, dim]. */
	void biasAdd(NativeBuffer x, NativeBuffer bias, int n, int dim);

	/** Writes n tokens' k/v ([n, kvHeads, headDim]) into layer {@code layer} of the cache by slot mapping. */
	void kvWrite(KvCacheMemory cache, int layer, NativeBuffer k, NativeBuffer v, NativeBuffer slots, int n);

	/**
	 * Paged attention over a mixed batch through block tables; see native/README.md. With {@code window}
	 * above 0 each query attends to its last {@code window} positions only (sliding window).
	 */
	void pagedAttention(NativeBuffer out, NativeBuffer q, KvCacheMemory cache, int layer, NativeBuffer blockTables,
			int maxBlocksPerSeq, NativeBuffer seqLens, NativeBuffer queryStart, int numSeqs, int numTokens, int numHeads,
			float scale, int window);

	/** Copies physical blocks src[i] to dst[i] in every layer (copy-on-write). */
	void blockCopy(KvCacheMemory cache, NativeBuffer src, NativeBuffer dst, int n);

	void argmax(NativeBuffer out, NativeBuffer logits, int n, int vocab);

	@Override
	void close();

	static void need(NativeBuffer b, long elements, DType type, String what) {
		if (b.type() != type) {
			throw new IllegalArgumentException(what + ": expected " + type + " buffer, got " + b.type());
		}
		if (b.elements() < elements) {
			throw new IllegalArgumentException(
					what + ": buffer holds " + b.elements() + " elements, the op needs " + elements);
		}
	}

	static void need(NativeBuffer b, long elements, String what) {
		need(b, elements, DType.F32, what);
	}
}
