package dev.blockserve.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The golden check the GPU script runs, exercised here on the CPU backend. */
class GoldenCheckTest {

	@Test
	void passesOnCpuAndReportsATable() {
		SharedModels.dir("stories260K");
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		int code = GoldenCheck.run(new String[] { "--models", SharedModels.ROOT.toString(), "--device", "cpu" },
				new PrintStream(buf, true, StandardCharsets.UTF_8));
		String out = buf.toString(StandardCharsets.UTF_8);
		assertThat(code).as(out).isZero();
		assertThat(out).containsPattern("\\| tiny-random-llama \\| cpu \\(\\w+\\) \\| 9 \\| 9/9 PASS")
			.containsPattern("\\| stories260K \\| cpu \\(\\w+\\) \\| 6 \\| 6/6 PASS");
	}

	/** The F16 cache check the GPU script also runs, here on the CPU: the same ids, logits within 5e-2. */
	@Test
	void passesWithAnF16CacheAndRefusesBf16() {
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		int code = GoldenCheck.run(new String[] { "--models", SharedModels.ROOT.toString(), "--device", "cpu",
				"--kv-cache-dtype", "f16" }, new PrintStream(buf, true, StandardCharsets.UTF_8));
		String out = buf.toString(StandardCharsets.UTF_8);
		assertThat(code).as(out).isZero();
		assertThat(out).contains("tolerance 5e-02, f16 cache").containsPattern("\\| tiny-random-mistral \\| cpu \\(\\w+\\) \\| 10 \\| 10/10 PASS");
		buf.reset();
		assertThat(GoldenCheck.run(new String[] { "--models", SharedModels.ROOT.toString(), "--kv-cache-dtype", "bf16" },
				new PrintStream(buf, true, StandardCharsets.UTF_8))).isEqualTo(2);
		assertThat(buf.toString(StandardCharsets.UTF_8)).contains("check f32 or f16");
	}

	@Test
	void failsWithoutModels() {
		ByteArrayOutputStream buf = new ByteArrayOutputStream();
		assertThat(GoldenCheck.run(new String[] { "--models", "/nonexistent" }, new PrintStream(buf))).isEqualTo(1);
		assertThat(buf.toString()).contains("missing");
	}
}
