package dev.blockserve.backend;

import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The CUDA implementation of {@link Backend}: device memory, kernels in libblockserve_cuda. Activations
 * and the KV cache are FP32; each matmul weight gets a BF16 twin on first use (FP32 accumulation), made
 * by cuBLAS where libcublas can be opened and by the library's own tensor-core kernel otherwise (or, when
 * opened with BF16 off, matmuls stay in FP32 for exact comparison with the CPU). Device-side range
 * errors (a bad block id or slot) surface at the next download as a {@link BackendException}. Calls must
 * come from one thread (the engine's), like every backend here.
 */
public final class CudaBackend extends NativeBackend {

	/** A CUDA device as the driver reports it. */
	public record Device(int index, String name, String computeCapability, long freeBytes, long totalBytes) {
	}

	private final Device device;

	private final boolean bf16Matmul;

	private final Map<NativeBuffer, NativeBuffer> bf16 = new IdentityHashMap<>();

	private NativeBuffer xBf16;

	private NativeBuffer attnScratch;

	private CudaBackend(Device device, boolean bf16Matmul) {
		this.device = device;
		this.bf16Matmul = bf16Matmul;
	}

	/** Number of CUDA devices; 0 where the library, the driver or a device is missing. */
	public static int deviceCount() {
		try {
			return CudaNative.deviceCount();
		}
		catch (BackendException | UnsatisfiedLinkError | ExceptionInInitializerError | NoClassDefFoundError e) {
			return 0;
		}
	}

	public static CudaBackend open(int index) {
		return open(index, true);
	}

	/** @param bf16Matmul false keeps matmuls in FP32 (comparable with the CPU backend's numerics) */
	public static CudaBackend open(int index, boolean bf16Matmul) {
		int n = CudaNative.deviceCount();
		if (index < 0 || index >= n) {
			throw new BackendException("CUDA device " + index + " requested, " + n + " present");
		}
		String[] f = CudaNative.deviceInfo(index).split("\\|");
		CudaNative.setDevice(index);
		return new CudaBackend(new Device(index, f[0], f[1], Long.parseLong(f[2]), Long.parseLong(f[3])), bf16Matmul);
	}

	public Device device() {
		return device;
	}

	public long freeMemory() {
		return CudaNative.freeMemory();
	}

	/** Which matmul runs: "cublas" or "wmma" (BF16), or "fp32". */
	public String matmulImplementation() {
		return bf16Matmul ? CudaNative.matmulImpl() : "fp32";
	}

	@Override
	public String name() {
		return "cuda";
	}

	@Override
	protected long rawAlloc(long bytes) {
		return CudaNative.alloc(bytes);
	}

	@Override
	protected void rawFree(long address) {
		CudaNative.free(address);
	}

	@Override
	public NativeBuffer loadWeight(long hostAddress, DType type, long elements) {
		NativeBuffer out = allocate(elements, DType.F32);
		try {
			if (type == DType.F32) {
				CudaNative.copy(out.address(this), hostAddress, elements * 4, 1);
				return out;
			}
			if (type != DType.F16 && type != DType.BF16) {
				throw new IllegalArgumentException("weights of type " + type + " are not supported");
			}
			try (NativeBuffer raw = allocate((elements + 1) / 2, DType.F32)) {
				CudaNative.copy(raw.address(this), hostAddress, elements * 2, 1);
				if (type == DType.F16) {
					CudaNative.f16ToF32(out.address(this), raw.address(this), elements);
				}
				else {
					CudaNative.bf16ToF32(out.address(this), raw.address(this), elements);
				}
				CudaNative.checkError();
			}
			return out;
		}
		catch (RuntimeException e) {
			out.close();
			throw e;
		}
	}

	@Override
	protected void rawWriteInts(long dst, int[] src, int n) {
		CudaNative.writeInts(dst, src, n);
	}

	@Override
	protected void rawWriteFloats(long dst, float[] src, int n) {
		CudaNative.writeFloats(dst, src, n);
	}

	@Override
	protected void rawReadInts(long src, int[] dst, int n) {
		CudaNative.readInts(src, dst, n);
	}

	@Override
	protected void rawReadFloats(long src, float[] dst, int dstOffset, int n) {
		CudaNative.readFloats(src, dst, dstOffset, n);
	}

	@Override
	protected void rawEmbedding(long out, long table, long ids, long n, long dim, long rows) {
		CudaNative.embedding(out, table, ids, n, dim, rows);
	}

	@Override
	protected void rawRmsnorm(long out, long x, long w, long n, long dim, float eps) {
		CudaNative.rmsnorm(out, x, w, n, dim, eps);
	}

	@Override
	protected void checkedMatmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		if (!bf16Matmul) {
			CudaNative.matmulF32(out.address(this), x.address(this), w.address(this), n, k, m);
			return;
		}
		NativeBuffer wb = bf16.get(w);
		if (wb == null) {
			wb = allocate((w.elements() + 1) / 2, DType.F32); // BF16 values, two per float slot
			CudaNative.f32ToBf16(wb.address(this), w.address(this), w.elements());
			bf16.put(w, wb);
		}
		xBf16 = atLeast(xBf16, ((long) n * k + 1) / 2);
		CudaNative.matmul(out.address(this), x.address(this), xBf16.address(this), wb.address(this), n, k, m);
	}

	/** A scratch buffer of at least {@code floats} elements, grown (never shrunk) as steps get larger. */
	private NativeBuffer atLeast(NativeBuffer b, long floats) {
		if (b != null && b.elements() >= floats) {
			return b;
		}
		if (b != null) {
			b.close();
		}
		return allocate(Math.max(floats, 1 << 16), DType.F32);
	}

	@Override
	protected void rawRope(long x, long pos, long cosSin, long n, long heads, long headDim, long maxPos) {
		CudaNative.rope(x, pos, cosSin, n, heads, headDim, maxPos);
	}

	@Override
	protected void rawSiluMul(long out, long gate, long up, long count) {
		CudaNative.siluMul(out, gate, up, count);
	}

	@Override
	protected void rawAdd(long x, long y, long count) {
		CudaNative.add(x, y, count);
	}

	@Override
	protected void rawKvWrite(long kCache, long vCache, long k, long v, long slots, long n, long kvHeads, long headDim,
			long numSlots) {
		CudaNative.kvWrite(kCache, vCache, k, v, slots, n, kvHeads, headDim, numSlots);
	}

	@Override
	protected void rawPagedAttention(long out, long q, long kCache, long vCache, long blockTables, long maxBlocksPerSeq,
			long seqLens, long queryStart, long numSeqs, long numTokens, long numHeads, long numKvHeads, long headDim,
			long blockSize, long numBlocks, float scale) {
		attnScratch = atLeast(attnScratch,
				CudaNative.attentionScratchFloats(numSeqs, numHeads, headDim, maxBlocksPerSeq * blockSize));
		CudaNative.pagedAttention(out, q, kCache, vCache, blockTables, maxBlocksPerSeq, seqLens, queryStart, numSeqs,
				numTokens, numHeads, numKvHeads, headDim, blockSize, numBlocks, scale, attnScratch.address(this));
	}

	@Override
	protected void rawBlockCopy(long kCache, long vCache, long src, long dst, long n, long blockElems, long numBlocks) {
		CudaNative.blockCopy(kCache, vCache, src, dst, n, blockElems, numBlocks);
	}

	@Override
	protected void rawArgmax(long out, long logits, long n, long vocab) {
		CudaNative.argmax(out, logits, n, vocab);
	}

	@Override
	public void close() {
		for (NativeBuffer b : bf16.values()) {
			b.close();
		}
		bf16.clear();
		if (xBf16 != null) {
			xBf16.close();
		}
		if (attnScratch != null) {
			attnScratch.close();
		}
	}
}
