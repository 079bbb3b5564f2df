package dev.blockserve.backend;

import java.util.List;

import dev.blockserve.cli.GoldenCheck;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.AfterAll;
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
 * refusal here; CI machines with AVX-512 run their goldens.)
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

	@Test
	void anUnknownLevelIsRefusedWithTheKnownOnes() {
		assertThatThrownBy(() -> new CpuBackend(1, "avx9000")).isInstanceOf(BackendException.class)
			.hasMessageContaining("unknown instruction set level 'avx9000'")
			.hasMessageContaining("avx512bf16, avx512, avx2, baseline");
	}
}
