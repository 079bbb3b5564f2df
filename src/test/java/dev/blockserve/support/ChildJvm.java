package dev.blockserve.support;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A child JVM on this test run's classpath that loads its native libraries from another folder (this JVM
 * already holds the shipped ones): CpuLevelsTest's emulated AVX-512 copies, CudaEmulatedGoldenTest's
 * emulated CUDA library. Its output goes to a temporary file, deleted afterwards; no child outlives the
 * call, a timeout included.
 */
public final class ChildJvm {

	private ChildJvm() {
	}

	/** Runs {@code args} (system properties, then the main class and its arguments); its output, after exit 0. */
	public static String run(Path nativeDir, List<String> args, int minutes) throws Exception {
		Path log = Files.createTempFile("blockserve-child", ".log");
		Process p = null;
		try {
			List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
					"-Xss4m", "-cp", System.getProperty("java.class.path"), "-Dblockserve.native.dir=" + nativeDir.toAbsolutePath(),
					"-Dai.djl.offline=true", "-Dblockserve.shared.models=" + SharedModels.ROOT));
			command.addAll(args);
			p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
			assertThat(p.waitFor(minutes, TimeUnit.MINUTES)).as("the child JVM finished").isTrue();
			String report = Files.readString(log);
			assertThat(p.exitValue()).as(report).isZero();
			return report;
		}
		finally {
			if (p != null) {
				p.destroyForcibly(); // after a timeout: no child JVM outlives the test
				p.waitFor(30, TimeUnit.SECONDS);
			}
			Files.deleteIfExists(log);
		}
	}
}
