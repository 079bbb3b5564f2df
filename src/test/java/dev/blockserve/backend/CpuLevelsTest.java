package dev.blockserve.backend;

import java.nio.file.Path;
import java.util.List;

import dev.blockserve.cli.GoldenCheck;
import dev.blockserve.support.ChildJvm;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Run-time CPU dispatch: every instruction set level the build has is forced in turn. A level this CPU
 * runs reproduces the goldens of every shared model exactly; one it lacks is refused with the levels it
 * has, and so is an unknown name. (On a CPU without AVX-512 the AVX-512 levels are checked only for
 * refusal here, and their code runs the goldens through a copy built for AVX2 instead: see
 * {@link #avx512LevelsEmulatedOnThisCpuReproduceTheGoldens}.)
 */
class CpuLevelsTest {

	@AfterAll
	static void backToAuto() {
		new CpuBackend(0, "auto").close();
	}

	@Test
	void autoPicksTheBestLevelThisCpuRuns() {
		List<String> supported = CpuBackend.supportedLevels();
		assertThat(supported).isNotEmpty().isSubsetOf(CpuKernels.LEVELS);
		try (CpuBackend b = new CpuBackend(1, "auto")) {
			assertThat(b.level()).isEqualTo(supported.get(0));
		}
		assertThat(supported).contains("baseline");
	}

	@ParameterizedTest
	@ValueSource(strings = { "avx512bf16", "avx512", "avx2", "baseline" })
	@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
	void eachLevelReproducesTheGoldensOrIsRefused(String level) {
		if (!CpuBackend.supportedLevels().contains(level)) {
			assertThatThrownBy(() -> new CpuBackend(1, level)).isInstanceOf(BackendException.class)
				.hasMessageContaining("cannot run level '" + level + "'")
				.hasMessageContaining(String.join(",", CpuBackend.supportedLevels()));
			return;
		}
		var text = new java.io.ByteArrayOutputStream();
		int rc = GoldenCheck.run(new String[] { "--models", SharedModels.ROOT.toString(), "--cpu-level", level },
				new java.io.PrintStream(text, true));
		String report = text.toString();
		assertThat(rc).as(report).isZero();
		assertThat(report.lines().filter(l -> l.contains("cpu (" + level + ")") && l.contains("PASS"))).as(report).hasSize(5);
	}

	/**
	 * The AVX-512 levels' own code (16 floats per vector: its matmul tiles, tails, panel packing and
	 * attention cases) on a CPU without AVX-512: the native build compiles it a second time for AVX2
	 * into {@code target/native-build/emulated/} with a dispatcher that lets this CPU select it
	 * (native/CMakeLists.txt, BLOCKSERVE_EMULATED_TESTS). A child JVM loads that folder's libraries, since
	 * this one already holds the shipped ones, and runs every shared model's goldens at the level.
	 * What it cannot check is the compiler's AVX-512 instruction selection, which only an AVX-512 CPU
	 * runs (the parameterized test above does there).
	 */
	@ParameterizedTest
	@ValueSource(strings = { "avx512bf16", "avx512" })
	@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
	void avx512LevelsEmulatedOnThisCpuReproduceTheGoldens(String level) throws Exception {
		Assumptions.assumeTrue(System.getProperty("os.arch").matches("amd64|x86_64"),
				"the emulated AVX-512 build exists on x86-64 only");
		Assumptions.assumeTrue(CpuBackend.supportedLevels().contains("avx2"),
				"the emulated AVX-512 copies are AVX2 code, and this CPU has no AVX2");
		Path dir = Path.of(System.getProperty("blockserve.test.emulated.dir", "target/native-build/emulated"));
		assertThat(dir.resolve("libblockserve_cpu_" + level + ".so")).as("the native build's emulated copy of " + level).isRegularFile();
		assertThat(dir.resolve("libblockserve_cpu.so")).isRegularFile();
		String report = ChildJvm.run(dir, List.of(GoldenCheck.class.getName(), "--models", SharedModels.ROOT.toString(),
				"--cpu-level", level), 5);
		assertThat(report.lines().filter(l -> l.contains("cpu (" + level + ")") && l.contains("PASS"))).as(report).hasSize(5);
	}

	@Test
	void anUnknownLevelIsRefusedWithTheKnownOnes() {
		assertThatThrownBy(() -> new CpuBackend(1, "avx9000")).isInstanceOf(BackendException.class)
			.hasMessageContaining("unknown instruction set level 'avx9000'")
			.hasMessageContaining("avx512bf16, avx512, avx2, baseline");
	}
}
