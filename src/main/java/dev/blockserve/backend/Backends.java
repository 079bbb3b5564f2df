package dev.blockserve.backend;

import java.util.Locale;
import java.util.function.Consumer;

/** Picks the backend for {@code blockserve.device}: auto, cpu or cuda. */
public final class Backends {

	private Backends() {
	}

	/**
	 * @param device "auto" (CUDA when the library loads and a device is present, else CPU), "cpu" or "cuda"
	 * @param log receives one line naming the device and its memory
	 */
	public static Backend open(String device, int cpuThreads, Consumer<String> log) {
		return open(device, cpuThreads, "auto", log);
	}

	/** @param cpuLevel the CPU kernels' instruction set level ({@link CpuBackend#CpuBackend(int, String)}) */
	public static Backend open(String device, int cpuThreads, String cpuLevel, Consumer<String> log) {
		return open(device, cpuThreads, cpuLevel, false, log, log);
	}

	/**
	 * @param bf16Activations {@link CpuBackend#bf16Activations}; CPU only
	 * @param warn receives a line where bf16Activations cannot apply (and is ignored)
	 */
	public static Backend open(String device, int cpuThreads, String cpuLevel, boolean bf16Activations,
			Consumer<String> log, Consumer<String> warn) {
		Backend b = openDevice(device, cpuThreads, cpuLevel, log);
		if (bf16Activations) {
			if (!(b instanceof CpuBackend cpu)) {
				warn.accept("blockserve.bf16-activations is for the CPU backend; " + b.name() + " ignores it");
			} else if (cpu.bf16Activations(true)) {
				log.accept("BF16 activations: BF16 matrices multiply activations rounded to BF16 "
						+ "(vdpbf16ps); not exact to F32");
			} else {
				warn.accept("blockserve.bf16-activations ignored: kernels for " + cpu.level()
						+ " have no BF16 dot product (AVX-512 BF16); the kernels stay exact");
			}
		}
		return b;
	}

	private static Backend openDevice(String device, int cpuThreads, String cpuLevel, Consumer<String> log) {
		String d = device == null ? "auto" : device.toLowerCase(Locale.ROOT);
		switch (d) {
			case "cpu":
				return cpu(cpuThreads, cpuLevel, log);
			case "cuda":
				if (CudaBackend.deviceCount() == 0) {
					throw new BackendException("blockserve.device=cuda, but no CUDA device is usable: the CUDA library ("
							+ NativeLibrary.platform() + "/libblockserve_cuda.so, built when nvcc is present) needs an NVIDIA "
							+ "driver and a GPU; use blockserve.device=cpu or auto");
				}
				return cuda(log);
			case "auto":
				return CudaBackend.deviceCount() > 0 ? cuda(log) : cpu(cpuThreads, cpuLevel, log);
			default:
				throw new IllegalArgumentException("blockserve.device must be auto, cpu or cuda, got '" + device + "'");
		}
	}

	private static Backend cpu(int threads, String level, Consumer<String> log) {
		CpuBackend b = new CpuBackend(threads, level);
		log.accept("Backend: cpu, " + b.threads() + " kernel threads, kernels for " + b.level() + " (this CPU runs "
				+ String.join(", ", CpuBackend.supportedLevels()) + ")");
		return b;
	}

	private static Backend cuda(Consumer<String> log) {
		CudaBackend b = CudaBackend.open(0);
		CudaBackend.Device dev = b.device();
		log.accept(String.format("Backend: cuda, device 0: %s (compute %s), %.1f GiB free of %.1f GiB, matmul: %s",
				dev.name(), dev.computeCapability(), dev.freeBytes() / 1073741824.0, dev.totalBytes() / 1073741824.0,
				b.matmulImplementation()));
		return b;
	}
}
