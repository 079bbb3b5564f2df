package dev.blockserve.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;

/** The command line: help and version at once without a model or Spring; Spring-style arguments still serve. */
class CliTest {

	final StringWriter out = new StringWriter();

	final StringWriter err = new StringWriter();

	final List<String[]> served = new ArrayList<>();

	int run(String... args) {
		return Cli.run(args, served::add, new PrintWriter(out, true), new PrintWriter(err, true));
	}

	@ParameterizedTest
	@ValueSource(strings = { "--help", "serve --help", "generate --help", "-h" })
	void helpOfEveryCommandExitsZeroQuicklyWithoutAModel(String args) {
		long t0 = System.nanoTime();
		assertThat(run(args.split(" "))).isZero();
		long ms = (System.nanoTime() - t0) / 1_000_000;
		assertThat(out.toString()).contains("Usage:");
		assertThat(served).as("nothing was served").isEmpty();
		assertThat(ms).as("ms for " + args).isLessThan(2000);
	}

	@Test
	void versionPrintsTheBuildsVersion() {
		assertThat(run("--version")).isZero();
		assertThat(out.toString().strip()).matches("blockserve \\d+\\.\\d+\\.\\d+.*");
	}

	@Test
	void springStyleArgumentsStillServe() {
		assertThat(run("--blockserve.model=/m", "--server.port=9")).isZero();
		assertThat(served).singleElement().satisfies(a -> assertThat(a).containsExactly("--blockserve.model=/m", "--server.port=9"));
		assertThat(run("serve", "--blockserve.model=/n")).isZero();
		assertThat(served.get(1)).containsExactly("--blockserve.model=/n");
		assertThat(run()).isZero();
		assertThat(served.get(2)).isEmpty();
	}

	@Test
	void aServerThatFailsToStartExitsNonZeroWithoutAStackTrace() {
		int code = Cli.run(new String[] { "--blockserve.model=/x" }, a -> {
			throw new IllegalStateException("start-up failed");
		}, new PrintWriter(out, true), new PrintWriter(err, true));
		assertThat(code).isEqualTo(1);
		assertThat(err.toString()).doesNotContain("at dev.blockserve");
	}
}
