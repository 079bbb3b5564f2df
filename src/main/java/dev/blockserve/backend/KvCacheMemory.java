package dev.blockserve.backend;

/**
 * The physical KV cache: per layer one K and one V buffer of {@code numBlocks} blocks, each block
 * {@code blockSize} tokens of {@code kvHeads x headDim} floats, laid out as
 * [num_blocks, block_size, kv_heads, head_dim] (FlashAttention's paged layout). Which block holds
 * what is the block pool's business; this class only owns the memory.
 * Allocated at start-up; written and read by the engine thread's ops only.
 */
public final class KvCacheMemory implements AutoCloseable {

	private final NativeBuffer[] k;

	private final NativeBuffer[] v;

	private final int numBlocks;

	private final int blockSize;

	private final int kvHeads;

	private final int headDim;

	public KvCacheMemory(Backend backend, int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
		if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0) {
			throw new IllegalArgumentException("KV cache dimensions must be positive: layers=" + layers + " blocks="
					+ numBlocks + " blockSize=" + blockSize + " kvHeads=" + kvHeads + " headDim=" + headDim);
		}
		this.numBlocks = numBlocks;
		this.blockSize = blockSize;
		this.kvHeads = kvHeads;
		this.headDim = headDim;
		this.k = new NativeBuffer[layers];
		this.v = new NativeBuffer[layers];
		long perLayer = (long) numBlocks * blockSize * kvHeads * headDim;
		try {
			for (int l = 0; l < layers; l++) {
				k[l] = backend.allocate(perLayer, DType.F32);
				v[l] = backend.allocate(perLayer, DType.F32);
			}
		}
		catch (RuntimeException e) {
			close();
			throw e;
		}
	}

	/** Bytes one block takes over all layers, K and V: 2 x layers x kvHeads x headDim x 4 x blockSize. */
	public static long bytesPerBlock(int layers, int blockSize, int kvHeads, int headDim) {
		return 2L * layers * kvHeads * headDim * DType.F32.bytes() * blockSize;
	}

	public NativeBuffer k(int layer) {
		return k[layer];
	}

	public NativeBuffer v(int layer) {
		return v[layer];
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
