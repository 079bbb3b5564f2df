package dev.blockserve.backend;

import static dev.blockserve.backend.Backend.need;

/**
 * The CPU implementation of {@link Backend}: host memory, kernels in libblockserve_cpu (C++17, OpenMP)
 * compiled for several instruction set levels, the best this CPU runs chosen at start (or the one
 * asked for). F32, BF16 and F16 weight matrices are used in place from the memory-mapped file, or from
 * one copy of it in 2 MiB pages where the mapping's pages are small ({@link WeightPages}). Ops run on the engine thread, which
 * the kernels' OpenMP team joins.
 */
public final class CpuBackend extends NativeBackend {

	/** Set at start-up, before a model loads. */
	private volatile WeightPages weightPages = WeightPages.AUTO;

	/** Whether BF16 matrices get a 12-bit form for batch-1 decode ({@link #packForDecode}); set before a model loads. */
	private volatile boolean packedDecode = true;

	/**
	 * Packed forms may take at most this many bytes in all: an eighth of the machine's memory (3 GiB of 24),
	 * so that a model near the memory's size loads as before, its later matrices unpacked.
	 */
	private final long packedBudget = physicalMemory() / 8;

	/**
	 * Packed forms alive, by address, with their bytes (which count against {@link #packedBudget} until freed).
	 * A few hundred entries, summed only when a matrix is packed (at load) or the total is asked for.
	 */
	private final java.util.concurrent.ConcurrentHashMap<Long, Long> packedLive = new java.util.concurrent.ConcurrentHashMap<>();

	/** @param threads kernel threads; 0 for one per available processor */
	public CpuBackend(int threads) {
		this(threads, "auto");
	}

	/**
	 * @param threads kernel threads; 0 for one per available processor
	 * @param level instruction set level of the kernels: "auto" (the best this CPU runs), "avx512bf16",
	 * "avx512", "avx2" or "baseline"; one the CPU lacks is refused with the levels it has. The level is
	 * process-wide: the last backend created sets it.
	 */
	public CpuBackend(int threads, String level) {
		super(new CpuKernels());
		if (threads < 0) {
			throw new IllegalArgumentException("threads must be >= 0, got " + threads);
		}
		CpuKernels.select(level);
		CpuKernels.setThreads(threads);
		CpuKernels.setBf16Activations(false); // exact until asked (the switch is process-wide)
	}

	/**
	 * BF16 activations: with {@code on}, BF16 weight matrices take the activations rounded to BF16 and use
	 * the CPU's BF16 dot product, as llama.cpp does: about twice the arithmetic, not exact to F32 (batch-1
	 * decode, bound by reading the weights, gains nothing). Below 24 rows a row's result still does not
	 * depend on the rows beside it. Process-wide.
	 *
	 * @return whether it took effect: false on a level without AVX-512 BF16 (the kernels stay exact)
	 */
	public boolean bf16Activations(boolean on) {
		return CpuKernels.setBf16Activations(on);
	}

	/** Where models loaded onto this backend read their weight files from (default {@link WeightPages#AUTO}). */
	public CpuBackend weightPages(WeightPages pages) {
		this.weightPages = java.util.Objects.requireNonNull(pages, "pages");
		return this;
	}

	@Override
	public WeightPages weightPages() {
		return weightPages;
	}

	/**
	 * Whether models loaded from now on keep a 12-bit copy of each BF16 matrix for batch-1 decode (default
	 * true): 76% of the matrices' bytes more memory, the same results bit for bit, and one sequence's tokens
	 * faster where reading the weights bounds them; only where the CPU has AVX-512 VBMI.
	 */
	public CpuBackend packedDecode(boolean on) {
		this.packedDecode = on;
		return this;
	}

	/** Whether this CPU and the chosen level can multiply packed BF16 matrices (AVX-512 with VBMI). */
	public boolean canPackForDecode() {
		return CpuKernels.packedBf16Bytes(64, 1) > 0;
	}

	/** Bytes of the packed matrix forms alive now. */
	public long packedBytes() {
		long sum = 0;
		for (long b : packedLive.values()) {
			sum += b;
		}
		return sum;
	}

	/**
	 * Adds to a BF16 matrix its form at 12 bits a weight (native/src/cpu_kernels.cpp says how): each row's
	 * few distinct high bytes in a table and a 4-bit index per weight beside the low bytes. Skipped (returns
	 * 0) where packing is off, the CPU or level cannot multiply it, or the packed forms would pass
	 * {@link #packedBudget}.
	 */
	@Override
	public long packForDecode(NativeBuffer w, int rows, int cols) {
		if (!packedDecode || w.type() != DType.BF16 || w.packed() != null) {
			return 0;
		}
		need(w, (long) rows * cols, DType.BF16, "pack w");
		long bytes = CpuKernels.packedBf16Bytes(cols, rows);
		if (bytes == 0 || packedBytes() + bytes > packedBudget) {
			return 0;
		}
		NativeBuffer p = allocate((bytes + 3) / 4, DType.I32); // the packed bytes, allocated as words
		try {
			CpuKernels.packBf16(p.address(this), w.address(this), cols, rows);
		}
		catch (RuntimeException e) {
			p.close();
			throw e;
		}
		packedLive.put(p.address(this), p.bytes());
		w.packed(p);
		return p.bytes();
	}

	@Override
	public void free(long address) {
		packedLive.remove(address); // a packed form stops counting against the budget
		super.free(address);
	}

	/** One row of x against a matrix with a packed form reads that form; everything else as the base class does. */
	@Override
	public void matmul(NativeBuffer out, NativeBuffer x, NativeBuffer w, int n, int k, int m) {
		NativeBuffer p = w.packed();
		if (n != 1 || p == null) {
			super.matmul(out, x, w, n, k, m);
			return;
		}
		need(out, m, "matmul out");
		need(x, k, "matmul x");
		need(w, (long) m * k, DType.BF16, "matmul w");
		CpuKernels.matmulPackedBf16(out.address(this), x.address(this), p.address(this), w.address(this), k, m);
	}

	/**
	 * One row of x against two or three matrices that all have packed forms: one native op, one parallel
	 * region instead of one a matrix (each costs a few microseconds of the team's start and end); else as
	 * the interface does, one matmul each.
	 */
	@Override
	public void matmulSameInput(NativeBuffer x, int n, int k, NativeBuffer out1, NativeBuffer w1, int m1, NativeBuffer out2,
			NativeBuffer w2, int m2, NativeBuffer out3, NativeBuffer w3, int m3) {
		NativeBuffer p1 = w1.packed(), p2 = w2.packed(), p3 = w3 == null ? null : w3.packed();
		if (n != 1 || p1 == null || p2 == null || (out3 != null && p3 == null)) {
			super.matmulSameInput(x, n, k, out1, w1, m1, out2, w2, m2, out3, w3, m3);
			return;
		}
		need(x, k, "matmul x");
		need(out1, m1, "matmul out");
		need(w1, (long) m1 * k, DType.BF16, "matmul w");
		need(out2, m2, "matmul out");
		need(w2, (long) m2 * k, DType.BF16, "matmul w");
		if (out3 != null) {
			need(out3, m3, "matmul out");
			need(w3, (long) m3 * k, DType.BF16, "matmul w");
		}
		CpuKernels.matmulPackedBf16N(x.address(this), k, out1.address(this), p1.address(this), w1.address(this), m1,
				out2.address(this), p2.address(this), w2.address(this), m2, out3 == null ? 0 : out3.address(this),
				p3 == null ? 0 : p3.address(this), w3 == null ? 0 : w3.address(this), out3 == null ? 0 : m3);
	}

	private static long physicalMemory() {
		try {
			if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
				return os.getTotalMemorySize();
			}
		}
		catch (LinkageError noManagementModule) {
			// a jlink'd runtime without java.management / jdk.management: the size is unknown
		}
		return 0; // unknown: no packed forms
	}

	/** The kernels' instruction set level ("avx2", ...). */
	public String level() {
		return CpuKernels.level();
	}

	/** The levels this CPU runs, best first. */
	public static java.util.List<String> supportedLevels() {
		return java.util.List.of(CpuKernels.supportedLevels().split(","));
	}

	/** Peak GFLOP/s of one core: F32 FMA, or BF16 dot products ({@code bf16}; 0 where the level has none). */
	public double peakGflops(boolean bf16, double seconds) {
		return CpuKernels.peakGflops(bf16, seconds);
	}

	@Override
	public String name() {
		return "cpu";
	}

	@Override
	public Kind kind() {
		return Kind.CPU;
	}

	/** Host memory is not the backend's to size: the KV cache takes the configured budget. */
	@Override
	public long freeDeviceMemory() {
		return -1;
	}

	public int threads() {
		return CpuKernels.threads();
	}

	/**
	 * Threads now alive that have run a kernel able to open a parallel region. Serving wants exactly one,
	 * the engine thread ({@link TransientThread} says why).
	 */
	public static int teamThreads() {
		return CpuKernels.teamThreads();
	}

	/** An aligned F32 weight is a view of the mapping itself; anything else is widened into a copy. */
	@Override
	public NativeBuffer loadWeight(long hostAddress, DType type, long elements) {
		if (type == DType.F32 && (hostAddress & 3) == 0) {
			return new NativeBuffer(this, hostAddress, elements, DType.F32, false);
		}
		return super.loadWeight(hostAddress, type, elements);
	}

	/**
	 * A weight matrix as {@code policy} says: F32, BF16 and F16 as views of the mapping ({@link WeightType#AUTO}),
	 * rounded into a BF16 copy ({@link WeightType#BF16} of another type) or widened into an F32 copy.
	 */
	@Override
	public NativeBuffer loadMatrix(long hostAddress, DType type, long elements, WeightType policy) {
		boolean aligned = (hostAddress & (type.bytes() - 1)) == 0;
		if (policy == WeightType.F32 || type == DType.F32 && policy == WeightType.AUTO || !aligned) {
			return loadWeight(hostAddress, type, elements);
		}
		if (type == DType.BF16 || policy == WeightType.AUTO) { // BF16 kept, or F16 kept under auto
			return new NativeBuffer(this, hostAddress, elements, type, false);
		}
		// BF16 asked of an F32 or F16 checkpoint: round (F16 widened first, exactly)
		NativeBuffer wide = loadWeight(hostAddress, type, elements);
		NativeBuffer out = allocate(elements, DType.BF16);
		try {
			CpuKernels.roundToBf16(out.address(this), wide.address(this), elements);
			return out;
		}
		catch (RuntimeException e) {
			out.close();
			throw e;
		}
		finally {
			wide.close();
		}
	}

	/** Reads {@code floats} values at all threads' speed; returns a checksum (bandwidth probe). */
	public double streamRead(NativeBuffer b, long floats) {
		need(b, floats, "stream_read");
		return CpuKernels.streamRead(b.address(this), floats);
	}

	@Override
	public void close() {
		// Buffers are closed by their owners; nothing global to release.
	}
}
