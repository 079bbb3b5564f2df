package dev.blockserve.backend;

import java.util.IdentityHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import static dev.blockserve.backend.Backend.need;

/**
 * The CUDA implementation of {@link Backend}: device memory, kernels in libblockserve_cuda. Activations
 * and the KV cache are FP32; each matmul weight gets a BF16 twin on first use (FP32 accumulation), made
 * by cuBLAS where libcublas can be opened and by the library's own tensor-core kernel otherwise.
 * Device-side range errors (a bad block id or slot) surface at the next download as a
 * {@link BackendException}. Calls must come from one thread (the engine's), like every backend here.
 */
public final class CudaBackend implements Backend {

	/** A CUDA device as the driver reports it. */
	public record Device(int index, String name, String computeCapability, long freeBytes, long totalBytes) {
	}

	private final Device device;

	private final ConcurrentHashMap<Long, Long> live = new ConcurrentHashMap<>();

	private final AtomicLong liveBytes = new AtomicLong();

	private final Map<NativeBuffer, NativeBuffer> bf16 = new IdentityHashMap<>();

	private NativeBuffer xBf16;

	private NativeBuffer attnScratch;

	private final boolean bf16Matmul;

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

	/** @param bf16Matmul false keeps matmuls in FP32 (bit-for-bit comparable with the CPU backend's numerics) */
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

	public long liveBytes() {
		return liveBytes.get();
	}

	@Override
	public NativeBuffer allocate(long elements, DType type) {
		if (elements <= 0) {
			throw new IllegalArgumentException("allocate: element count must be positive, got " + elements);
		}
		long bytes = Math.multiplyExact(elements, (long) type.bytes());
		long a = CudaNative.alloc(bytes);
		live.put(a, bytes);
		liveBytes.addAndGet(bytes);
		return new NativeBuffer(this, a, elements, type, true);
	}

	@Override
	public void free(long address) {
		Long bytes = live.remove(address);
		if (bytes == null) {
			throw new IllegalStateException("free of an address this backend did not allocate");
		}
		liveBytes.addAndGet(-bytes);
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
	public void upload(NativeBuffer dst, int[] src, int n) {
		need(dst, n, DType.I32, "upload");
		if (n > 0) {
			CudaNative.writeInts(dst.address(this), src, n);
		}
	}

	@Override
	public void upload(NativeBuffer dst, float[] src, int n) {
		need(dst, n, "upload");
		if (n > 0) {
			CudaNative.writeFloats(dst.address(this), src, n);
		}
	}

	@Override
	public void download(NativeBuffer src, float[] dst, int n) {
		download(src, 0, dst, 0, n);
	}

	@Override
	public void download(NativeBuffer src, int[] dst, int n) {
		need(src, n, DType.I32, "download");
		if (n > dst.length) {
			throw new IllegalArgumentException("download of " + n + " ints into an array of " + dst.length);
		}
		CudaNative.readInts(src.address(this), dst, n);
	}

	@Override
	public void download(NativeBuffer src, long srcOffset, float[] dst, int dstOffset, int n) {
		need(src, srcOffset + n, "download");
		if (dstOffset < 0 || dstOffset + (long) n > dst.length) {
			throw new IllegalArgumentException("download of " + n + " floats to offset " + dstOffset + " of " + dst.length);
		}
		CudaNative.readFloats(src.address(this) + srcOffset * 4, dst, dstOffset, n);
	}

	@Override
	public void embedding(NativeBuffer out, NativeBuffer table, NativeBuffer ids, int n, int dim) {
		need(out, (long) n * dim, "embedding out");
		need(ids, n, DType.I32, "embedding ids");
		CudaNative.embedding(out.address(this), table.address(this), ids.address(this), n, dim, table.elements() / dim);
	}

	@Override
	public void rmsNorm(NativeBuffer out, NativeBuffer x, NativeBuffer weight, int n, int dim, float eps) {
		need(out, (long) n * dim, "rmsnorm out");
		need(x, (long) n * dim, "rmsnorm x");
		need(weight, dim, "rmsnorm weight");
		CudaNative.rmsnorm(out.address(this), x.address(this), weight.address(this), n, dim, eps);
	}

	@Override
	public void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		need(out, (long) n * m, "matmul out");
		need(x, (long) n * k, "matmul x");
		need(w, (long) m * k, "matmul w");
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
		long scratchFloats = ((long) n * k + 1) / 2;
		if (xBf16 == null || xBf16.elements() < scratchFloats) {
			if (xBf16 != null) {
				xBf16.close();
			}
			xBf16 = allocate(Math.max(scratchFloats, 1 << 16), DType.F32);
		}
		CudaNative.matmul(out.address(this), x.address(this), xBf16.address(this), wb.address(this), n, k, m);
	}

	@Override
	public void rope(NativeBuffer x, NativeBuffer positions, NativeBuffer cosSin, int n, int heads, int headDim) {
		need(x, (long) n * heads * headDim, "rope x");
		need(positions, n, DType.I32, "rope positions");
		CudaNative.rope(x.address(this), positions.address(this), cosSin.address(this), n, heads, headDim,
				cosSin.elements() / headDim);
	}

	@Override
	public void siluMul(NativeBuffer out, NativeBuffer gate, NativeBuffer up, long count) {
		need(out, count, "silu_mul out");
		need(gate, count, "silu_mul gate");
		need(up, count, "silu_mul up");
		CudaNative.siluMul(out.address(this), gate.address(this), up.address(this), count);
	}

	@Override
	public void add(NativeBuffer x, NativeBuffer y, long count) {
		need(x, count, "add x");
		need(y, count, "add y");
		CudaNative.add(x.address(this), y.address(this), count);
	}

	@Override
	public void kvWrite(KvCacheMemory cache, int layer, NativeBuffer k, NativeBuffer v, NativeBuffer slots, int n) {
		long row = (long) cache.kvHeads() * cache.headDim();
		need(k, n * row, "kv_write k");
		need(v, n * row, "kv_write v");
		need(slots, n, DType.I32, "kv_write slots");
		CudaNative.kvWrite(cache.k(layer).address(this), cache.v(layer).address(this), k.address(this),
				v.address(this), slots.address(this), n, cache.kvHeads(), cache.headDim(),
				(long) cache.numBlocks() * cache.blockSize());
	}

	@Override
	public void pagedAttention(NativeBuffer out, NativeBuffer q, KvCacheMemory cache, int layer,
			NativeBuffer blockTables, int maxBlocksPerSeq, NativeBuffer seqLens, NativeBuffer queryStart, int numSeqs,
			int numTokens, int numHeads, float scale) {
		need(blockTables, (long) numSeqs * maxBlocksPerSeq, DType.I32, "paged_attention block tables");
		need(seqLens, numSeqs, DType.I32, "paged_attention seq lens");
		need(queryStart, numSeqs + 1L, DType.I32, "paged_attention query start");
		long rows = (long) numTokens * numHeads * cache.headDim();
		need(q, rows, "paged_attention q");
		need(out, rows, "paged_attention out");
		long scratch = CudaNative.attentionScratchFloats(numSeqs, numHeads, cache.headDim(),
				(long) maxBlocksPerSeq * cache.blockSize());
		if (attnScratch == null || attnScratch.elements() < scratch) {
			if (attnScratch != null) {
				attnScratch.close();
			}
			attnScratch = allocate(Math.max(scratch, 1 << 16), DType.F32);
		}
		CudaNative.pagedAttention(out.address(this), q.address(this), cache.k(layer).address(this),
				cache.v(layer).address(this), blockTables.address(this), maxBlocksPerSeq, seqLens.address(this),
				queryStart.address(this), numSeqs, numTokens, numHeads, cache.kvHeads(), cache.headDim(),
				cache.blockSize(), cache.numBlocks(), scale, attnScratch.address(this));
	}

	@Override
	public void blockCopy(KvCacheMemory cache, NativeBuffer src, NativeBuffer dst, int n) {
		need(src, n, DType.I32, "block_copy src");
		need(dst, n, DType.I32, "block_copy dst");
		for (int l = 0; l < cache.layers(); l++) {
			CudaNative.blockCopy(cache.k(l).address(this), cache.v(l).address(this), src.address(this),
					dst.address(this), n, cache.blockElements(), cache.numBlocks());
		}
	}

	@Override
	public void argmax(NativeBuffer out, NativeBuffer logits, int n, int vocab) {
		need(out, n, DType.I32, "argmax out");
		need(logits, (long) n * vocab, "argmax logits");
		CudaNative.argmax(out.address(this), logits.address(this), n, vocab);
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
