package dev.blockserve.backend;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import dev.blockserve.cli.GoldenCheck;
import dev.blockserve.support.ChildJvm;
import dev.blockserve.support.RunTests;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CUDA backend's whole path (CudaBackend and CudaKernels in Java, the JNI bridge, the kernels' own
 * source) reproduces the goldens, run on the CPU emulator of the CUDA it uses
 * (native/tests/gpu/emu/cuda_emu.h): the native build compiles cuda/cuda_kernels.cu for it into
 * {@code target/native-build/cuda-emulated/} (BLOCKSERVE_CUDA_EMULATED_TESTS). A child JVM loads that
 * library beside the shipped CPU ones, since this one may already hold the real CUDA library. This is not
 * a GPU: it checks the kernels' logic and how the backend calls them (block tables, windows, biases, q/k
 * norms, the KV cache types, block copies), not a GPU's arithmetic or speed; native/tests/gpu/run.sh runs
 * the goldens on a real GPU.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class CudaEmulatedGoldenTest {

	private Path cuda;

	@BeforeEach
	void emulatedLibrary() {
		Assumptions.assumeTrue(System.getProperty("os.arch").matches("amd64|x86_64"),
				"the CUDA emulator switches stacks with x86-64 code");
		Path emulated = Path.of(System.getProperty("blockserve.test.cuda-emulated.dir", "target/native-build/cuda-emulated"));
		cuda = emulated.resolve("libblockserve_cuda.so");
		assertThat(cuda).as("the native build's CUDA library for the emulator").isRegularFile();
	}

	/**
	 * The golden suites themselves with {@code -Dblockserve.test.device=cuda}: every shared model alone and
	 * batched at block sizes 1, 16 and 32 with shuffled blocks, chunked prefill, preemption in a small pool,
	 * prefix caching, and the long Mistral sequence that holds at most two blocks of its 8-token window; F32
	 * caches (F16 caches add as much time again: their kernels are checked by cuda_kernel_test_cpu_emulated,
	 * and GoldenTest, SpeculativeGoldenTest and SlidingWindowTest with both cache types, 137 tests, passed on the
	 * emulator by hand in 15 minutes: native/README.md). The emulator runs a kernel's blocks one at a time on
	 * the calling thread, so each suite gets a child JVM of its own and the two run at once, one a core (7-10
	 * minutes one after the other on the 2-core CI machines, near CI's 30-minute limit; at once 530 s against
	 * 567, so one suite takes most of it).
	 */
	@Test
	void theGoldenSuitesPassOnTheCudaBackend() throws Exception {
		List<String> suites = List.of("dev.blockserve.model.GoldenTest", "dev.blockserve.engine.SlidingWindowTest");
		ExecutorService pool = Executors.newFixedThreadPool(suites.size());
		try {
			List<Future<String>> reports = new ArrayList<>();
			for (String suite : suites) {
				reports.add(pool.submit(() -> child(List.of("-Dblockserve.test.device=cuda", "-Dblockserve.test.kv-cache-types=f32",
						RunTests.class.getName(), suite), 20)));
			}
			for (int i = 0; i < suites.size(); i++) {
				String report = reports.get(i).get();
				assertThat(report).as(suites.get(i) + ": " + report).contains("RunTests: PASS");
			}
		}
		finally {
			pool.shutdownNow();
			assertThat(pool.awaitTermination(1, TimeUnit.MINUTES)).as("the children's threads ended").isTrue();
		}
	}

	/** GoldenCheck, the tool native/tests/gpu/run.sh runs on a GPU, on the same path. */
	@Test
	void goldenCheckPassesOnTheCudaBackend() throws Exception {
		String report = child(List.of(GoldenCheck.class.getName(), "--models", SharedModels.ROOT.toString(), "--device", "cuda"), 5);
		assertThat(report.lines().filter(l -> l.contains("| cuda |") && l.contains("PASS"))).as(report).hasSize(5);
	}

	/** Runs a child JVM on the emulated CUDA library and the shipped CPU ones (linked into a temporary folder); its output, after exit 0. */
	private String child(List<String> args, int minutes) throws Exception {
		Path shipped = Path.of("target/classes/native", NativeLibrary.platform());
		Path dir = Files.createTempDirectory("blockserve-cuda-emulated");
		List<Path> links = new ArrayList<>();
		try {
			links.add(Files.createSymbolicLink(dir.resolve(cuda.getFileName()), cuda.toAbsolutePath()));
			try (Stream<Path> cpu = Files.list(shipped)) {
				for (Path lib : cpu.filter(f -> f.getFileName().toString().startsWith("libblockserve_cpu")).toList()) {
					links.add(Files.createSymbolicLink(dir.resolve(lib.getFileName()), lib.toAbsolutePath()));
				}
			}
			return ChildJvm.run(dir, args, minutes);
		}
		finally {
			for (Path l : links) {
				Files.deleteIfExists(l);
			}
			Files.deleteIfExists(dir);
		}
	}
}
