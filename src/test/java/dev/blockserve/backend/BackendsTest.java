package dev.blockserve.backend;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Device selection where no GPU is usable (this and CI's machines): auto falls back, cuda says why. */
class BackendsTest {

	@Test
	void autoFallsBackToCpuAndCudaExplainsWhereNoGpuIsUsable() {
		org.junit.jupiter.api.Assumptions.assumeTrue(CudaBackend.deviceCount() == 0, "a GPU is present here");
		List<String> log = new ArrayList<>();
		try (Backend b = Backends.open("auto", 1, log::add)) {
			assertThat(b.name()).isEqualTo("cpu");
		}
		assertThat(log).singleElement().asString().startsWith("Backend: cpu");
		assertThatThrownBy(() -> Backends.open("cuda", 1, log::add)).isInstanceOf(BackendException.class)
			.hasMessageContaining("no CUDA device is usable")
			.hasMessageContaining("blockserve.device=cpu");
		assertThatThrownBy(() -> Backends.open("tpu", 1, log::add)).hasMessageContaining("auto, cpu or cuda");
	}

	/**
	 * Loading the CUDA library runs its JNI_OnLoad, which binds every {@link Kernels} method by name and
	 * signature and fails the load on any mismatch; without a driver the library must still load, report
	 * no device, and turn a CUDA call's failure into a BackendException rather than a crash.
	 */
	@Test
	void theCudaLibraryLoadsWithoutADriverAndBindsEveryKernel() {
		java.nio.file.Path lib = java.nio.file.Path.of("target", "classes", "native", NativeLibrary.platform(),
				System.mapLibraryName("blockserve_cuda"));
		org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.exists(lib), "CUDA library not built (no nvcc)");
		Kernels k = new CudaKernels();
		org.junit.jupiter.api.Assumptions.assumeTrue(CudaKernels.deviceCount() == 0, "a GPU is present here");
		assertThatThrownBy(() -> k.alloc(1024)).isInstanceOf(BackendException.class).hasMessageContaining("cudaMalloc");
	}

	/** The CPU library binds the same kernel methods, and a kernel's rejection arrives as a BackendException. */
	@Test
	void theCpuLibraryReportsAKernelRejectionAsAnException() {
		new CpuBackend(1).close(); // selects the kernels' level
		Kernels k = new CpuKernels();
		long ids = k.alloc(4);
		long out = k.alloc(16);
		long table = k.alloc(64);
		try {
			k.writeInts(ids, new int[] { 7 }, 1);
			assertThatThrownBy(() -> k.embedding(out, table, 0, ids, 1, 4, 4)).isInstanceOf(BackendException.class)
				.hasMessageContaining("embedding");
		}
		finally {
			k.free(ids);
			k.free(out);
			k.free(table);
		}
	}
}
