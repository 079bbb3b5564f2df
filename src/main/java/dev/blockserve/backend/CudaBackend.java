package dev.blockserve.backend;

/**
 * The CUDA implementation of {@link Backend}: device memory, kernels in libblockserve_cuda. Activations
 * and the KV cache are FP32; the library gives each matmul weight a BF16 twin on first use (FP32
 * accumulation), made by cuBLAS where libcublas can be opened and by its own tensor-core kernel
 * otherwise (or, when opened with BF16 off, matmuls stay in FP32 for exact comparison with the CPU).
 * Device-side range errors (a bad block id or slot) surface at the next download as a
 * {@link BackendException}. Calls must come from one thread (the engine's), like every backend here.
 */
public final class CudaBackend extends NativeBackend {

	/** A CUDA device as the driver reports it. */
	public record Device(int index, String name, String computeCapability, long freeBytes, long totalBytes) {
	}

	private final Device device;

	private final boolean bf16Matmul;

	private CudaBackend(Device device, boolean bf16Matmul) {
		super(new CudaKernels());
		this.device = device;
		this.bf16Matmul = bf16Matmul;
		CudaKernels.setBf16Matmul(bf16Matmul);
	}

	/** Number of CUDA devices; 0 where the library, the driver or a device is missing. */
	public static int deviceCount() {
		try {
			return CudaKernels.deviceCount();
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
		int n = CudaKernels.deviceCount();
		if (index < 0 || index >= n) {
			throw new BackendException("CUDA device " + index + " requested, " + n + " present");
		}
		String[] f = CudaKernels.deviceInfo(index).split("\\|");
		CudaKernels.setDevice(index);
		return new CudaBackend(new Device(index, f[0], f[1], Long.parseLong(f[2]), Long.parseLong(f[3])), bf16Matmul);
	}

	public Device device() {
		return device;
	}

	@Override
	public String name() {
		return "cuda";
	}

	@Override
	public Kind kind() {
		return Kind.CUDA;
	}

	@Override
	public long freeDeviceMemory() {
		return CudaKernels.freeMemory();
	}

	/** Which matmul runs: "cublas" or "wmma" (BF16), or "fp32". */
	public String matmulImplementation() {
		return bf16Matmul ? CudaKernels.matmulImpl() : "fp32";
	}

	@Override
	public void close() {
		CudaKernels.releaseScratch();
	}
}
