package dev.blockserve.support;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.CudaBackend;

/**
 * The backend the golden suites run on: the CPU, or with {@code -Dblockserve.test.device=cuda} the CUDA
 * backend with FP32 matmuls (comparable with the goldens to 1e-4). CudaEmulatedGoldenTest runs those
 * suites so in a child JVM on the CPU emulator of CUDA; on a GPU machine the same property runs them on
 * the GPU.
 */
public final class TestDevice {

	private TestDevice() {
	}

	public static String name() {
		return System.getProperty("blockserve.test.device", "cpu");
	}

	public static Backend backend() {
		return switch (name()) {
			case "cpu" -> new CpuBackend(0);
			case "cuda" -> CudaBackend.open(0, false);
			default -> throw new IllegalArgumentException("blockserve.test.device must be cpu or cuda, got '" + name() + "'");
		};
	}
}
