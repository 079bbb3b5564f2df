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

	@Test
	void theCudaLibraryLoadsWithoutADriverWhereItWasBuilt() {
		java.nio.file.Path lib = java.nio.file.Path.of("target", "classes", "native", NativeLibrary.platform(),
				System.mapLibraryName("blockserve_cuda"));
		org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.exists(lib), "CUDA library not built (no nvcc)");
		// Loading must not need libcuda: the runtime is linked statically and finds the driver lazily. The
		// native call (not CudaBackend.deviceCount, which turns any failure into 0) throws if it cannot load.
		int n = CudaNative.deviceCount();
		assertThat(n).isEqualTo(CudaBackend.deviceCount());
	}
}
