package dev.blockserve.backend;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import dev.blockserve.cli.GoldenCheck;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CUDA backend's whole path (CudaBackend and CudaKernels in Java, the JNI bridge, the kernels'
 * own source) reproduces every shared model's goldens, run on the CPU emulator of the CUDA it uses
 * (native/tests/gpu/emu/cuda_emu.h): the native build compiles cuda/cuda_kernels.cu for it into
 * {@code target/native-build/cuda-emulated/} (BLOCKSERVE_CUDA_EMULATED_TESTS). A child JVM loads that
 * library beside the shipped CPU ones, since this one may already hold the real CUDA library. This is
 * not a GPU: it checks the kernels' logic and how the backend calls them (block tables, windows, biases,
 * q/k norms, the KV cache types), not a GPU's arithmetic or speed; native/tests/gpu/run.sh runs the same
 * goldens on a real GPU.
 */
class CudaEmulatedGoldenTest {

	@ParameterizedTest
	@CsvSource({ "f32, 16", "f16, 16", "f32, 1" })
	@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
	void theCudaBackendOnTheEmulatorReproducesTheGoldens(String kvCacheDtype, int blockSize) throws Exception {
		Assumptions.assumeTrue(System.getProperty("os.arch").matches("amd64|x86_64"),
				"the CUDA emulator switches stacks with x86-64 code");
		Path emulated = Path.of(System.getProperty("blockserve.test.cuda-emulated.dir", "target/native-build/cuda-emulated"));
		Path shipped = Path.of("target/classes/native", NativeLibrary.platform());
		Path cuda = emulated.resolve("libblockserve_cuda.so");
		assertThat(cuda).as("the native build's CUDA library for the emulator").isRegularFile();
		Path dir = Files.createTempDirectory("blockserve-cuda-emulated");
		List<Path> links = new ArrayList<>();
		Path log = Files.createTempFile("blockserve-cuda-emulated", ".log");
		Process p = null;
		try {
			links.add(Files.createSymbolicLink(dir.resolve(cuda.getFileName()), cuda.toAbsolutePath()));
			try (Stream<Path> cpu = Files.list(shipped)) {
				for (Path lib : cpu.filter(f -> f.getFileName().toString().startsWith("libblockserve_cpu")).toList()) {
					links.add(Files.createSymbolicLink(dir.resolve(lib.getFileName()), lib.toAbsolutePath()));
				}
			}
			p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
					System.getProperty("java.class.path"), "-Dblockserve.native.dir=" + dir.toAbsolutePath(),
					"-Dai.djl.offline=true", GoldenCheck.class.getName(), "--models", SharedModels.ROOT.toString(), "--device",
					"cuda", "--kv-cache-dtype", kvCacheDtype, "--block-size", Integer.toString(blockSize))
				.redirectErrorStream(true)
				.redirectOutput(log.toFile())
				.start();
			assertThat(p.waitFor(10, TimeUnit.MINUTES)).as("golden check finished").isTrue();
			String report = Files.readString(log);
			assertThat(p.exitValue()).as(report).isZero();
			assertThat(report).as(report).contains(kvCacheDtype + " cache");
			assertThat(report.lines().filter(l -> l.contains("| cuda |") && l.contains("PASS"))).as(report).hasSize(5);
		}
		finally {
			if (p != null) {
				p.destroyForcibly(); // after a timeout: no child JVM outlives the test
				p.waitFor(30, TimeUnit.SECONDS);
			}
			for (Path l : links) {
				Files.deleteIfExists(l);
			}
			Files.deleteIfExists(dir);
			Files.deleteIfExists(log);
		}
	}
}
