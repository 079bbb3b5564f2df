package dev.blockserve.backend;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The build put the native libraries where the loader looks; the CUDA one wherever nvcc exists (as in CI). */
class NativeBuildTest {

	private static final Path DIR = Path.of("target", "classes", "native", NativeLibrary.platform());

	@Test
	void cpuLibraryIsBuiltAndLoads() {
		assertThat(DIR.resolve(System.mapLibraryName("blockserve_cpu"))).isRegularFile();
		try (CpuBackend b = new CpuBackend(1)) {
			assertThat(b.threads()).isEqualTo(1);
		}
	}

	@Test
	void cudaLibraryIsBuiltWhereNvccIsPresent() {
		boolean nvcc = System.getenv("CI") != null || onPath("nvcc");
		if (nvcc) {
			assertThat(DIR.resolve(System.mapLibraryName("blockserve_cuda")))
				.as("nvcc is present (or this is CI), so the CUDA library must have compiled").isRegularFile();
		}
	}

	@Test
	void missingLibraryNamesFileAndPlatform() {
		org.assertj.core.api.Assertions.assertThatThrownBy(() -> NativeLibrary.load("blockserve_nonexistent"))
			.isInstanceOf(BackendException.class)
			.hasMessageContaining("native/" + NativeLibrary.platform() + "/" + System.mapLibraryName("blockserve_nonexistent"))
			.hasMessageContaining("CMake");
	}

	@Test
	void gpuScriptRefusesToPassWithoutAGpu() throws Exception {
		org.junit.jupiter.api.Assumptions.assumeTrue(CudaBackend.deviceCount() == 0, "a GPU is present: run.sh would really run");
		Process p = new ProcessBuilder("bash", "native/tests/gpu/run.sh").redirectErrorStream(true)
			.redirectOutput(ProcessBuilder.Redirect.PIPE).start();
		String out = new String(p.getInputStream().readAllBytes());
		assertThat(p.waitFor()).as(out).isEqualTo(2);
		assertThat(out).contains("no NVIDIA GPU found").contains("nothing was built or tested").doesNotContain("PASS");
	}

	private static boolean onPath(String exe) {
		for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
			if (Files.isExecutable(Path.of(d, exe))) {
				return true;
			}
		}
		return false;
	}
}
