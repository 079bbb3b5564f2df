package dev.blockserve.backend;

import java.util.Locale;

/**
 * The physical KV cache: per layer one K and one V buffer of {@code numBlocks} blocks, each block
 * {@code blockSize} tokens of {@code kvHeads x headDim} values of the cache's type, laid out as
 * [num_blocks, block_size, kv_heads, head_dim] (FlashAttention's paged layout). Which block holds
 * what is the block pool's business; this class only owns the memory.
 * <p>
 * The type ({@code blockserve.kv-cache.dtype}) is F32 (exact: the goldens' arithmetic), BF16 or F16:
 * half the bytes a token, so twice the tokens in the same memory and half the bytes attention reads.
 * K and V are computed in F32 and rounded to nearest even once, when a token is written; attention
 * widens them back to F32 in registers, as llama.cpp's F16 cache (its default) and vLLM's BF16 cache
 * (its default for BF16 checkpoints) do.
 * Allocated at start-up; written and read by the engine thread's ops only.
 */
public final class KvCacheMemory implements AutoCloseable {

	private final NativeBuffer[] k;

	private final NativeBuffer[] v;

	private final DType dtype;

	private final int numBlocks;

	private final int blockSize;

	private final int kvHeads;

	private final int headDim;

	public KvCacheMemory(Backend backend, int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
		this(backend, layers, numBlocks, blockSize, kvHeads, headDim, DType.F32);
	}

	public KvCacheMemory(Backend backend, int layers, int numBlocks, int blockSize, int kvHeads, int headDim,
			DType dtype) {
		if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0) {
			throw new IllegalArgumentException("KV cache dimensions must be positive: layers=" + layers + " blocks="
					+ numBlocks + " blockSize=" + blockSize + " kvHeads=" + kvHeads + " headDim=" + headDim);
		}
		checkType(dtype);
		this.dtype = dtype;
		this.numBlocks = numBlocks;
		this.blockSize = blockSize;
		this.kvHeads = kvHeads;
		this.headDim = headDim;
		this.k = new NativeBuffer[layers];
		this.v = new NativeBuffer[layers];
		long perLayer = (long) numBlocks * blockSize * kvHeads * headDim;
		try {
			for (int l = 0; l < layers; l++) {
				k[l] = backend.allocate(perLayer, dtype);
				v[l] = backend.allocate(perLayer, dtype);
			}
		}
		catch (RuntimeException e) {
			close();
			throw e;
		}
	}

	/**
	 * Parses {@code blockserve.kv-cache.dtype}: "f32" ("float32", "fp32"), "bf16" ("bfloat16"), "f16"
	 * ("float16", "fp16", "half"), any case.
	 */
	public static DType parseType(String s) {
		String v = s == null ? "f32" : s.trim().toLowerCase(Locale.ROOT);
		return switch (v) {
			case "f32", "float32", "fp32" -> DType.F32;
			case "bf16", "bfloat16" -> DType.BF16;
			case "f16", "float16", "fp16", "half" -> DType.F16;
			default -> throw new IllegalArgumentException(
					"blockserve.kv-cache.dtype must be f32, bf16 or f16, got '" + s + "'");
		};
	}

	private static void checkType(DType t) {
		if (t != DType.F32 && t != DType.BF16 && t != DType.F16) {
			throw new IllegalArgumentException("a KV cache holds F32, BF16 or F16 values, not " + t);
		}
	}

	/** Bytes one block takes over all layers, K and V, in F32. */
	public static long bytesPerBlock(int layers, int blockSize, int kvHeads, int headDim) {
		return bytesPerBlock(layers, blockSize, kvHeads, headDim, DType.F32);
	}

	/** Bytes one block takes over all layers, K and V: 2 x layers x kvHeads x headDim x blockSize x the type's size. */
	public static long bytesPerBlock(int layers, int blockSize, int kvHeads, int headDim, DType dtype) {
		checkType(dtype);
		return 2L * layers * kvHeads * headDim * dtype.bytes() * blockSize;
	}

	public NativeBuffer k(int layer) {
		return k[layer];
	}

	public NativeBuffer v(int layer) {
		return v[layer];
	}

	/** The values' type: F32, BF16 or F16. */
	public DType dtype() {
		return dtype;
	}

	/** The kernels' code for {@link #dtype()}. */
	int dtypeCode() {
		return Kernels.dtypeCode(dtype);
	}

	public int layers() {
		return k.length;
	}

	public int numBlocks() {
		return numBlocks;
	}

	public int blockSize() {
		return blockSize;
	}

	public int kvHeads() {
		return kvHeads;
	}

	public int headDim() {
		return headDim;
	}

	/** Bytes of the whole cache, every layer, K and V. */
	public long bytes() {
		return bytesPerBlock(k.length, blockSize, kvHeads, headDim, dtype) * numBlocks;
	}

	public long blockElements() {
		return (long) blockSize * kvHeads * headDim;
	}

	@Override
	public void close() {
		for (int l = 0; l < k.length; l++) {
			if (k[l] != null) {
				k[l].close();
			}
			if (v[l] != null) {
				v[l].close();
			}
		}
	}
}
