package dev.blockserve.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.stream.Collectors;

import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class GenerateCommandTest {

	private final ByteArrayOutputStream out = new ByteArrayOutputStream();

	private final ByteArrayOutputStream err = new ByteArrayOutputStream();

	private int run(String... args) {
		return GenerateCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
				new PrintStream(err, true, StandardCharsets.UTF_8));
	}

	@Test
	void printsGoldenIdsFromTokenIds() {
		GoldenCase c = SharedModels.golden("stories260K").get(1);
		String ids = Arrays.stream(c.promptIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		int code = run("--model", SharedModels.dir("stories260K").toString(), "--prompt-ids", ids, "--max-tokens", "24",
				"--temperature", "0", "--ignore-eos", "--print-ids");
		assertThat(code).as(err.toString()).isZero();
		String expected = Arrays.stream(c.greedyIdsIgnoreEos24()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		assertThat(out.toString(StandardCharsets.UTF_8).strip()).isEqualTo(expected);
	}

	/** Every family through the command line: the random Qwen2, Qwen3 and Mistral models give their goldens. */
	@org.junit.jupiter.params.ParameterizedTest
	@org.junit.jupiter.params.provider.ValueSource(strings = { "tiny-random-qwen2", "tiny-random-qwen3", "tiny-random-mistral" })
	void printsGoldenIdsForEveryFamily(String model) {
		GoldenCase c = SharedModels.golden(model).get(9); // the 64-token prompt: past Mistral's window
		String ids = Arrays.stream(c.promptIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		out.reset();
		int code = run("--model", SharedModels.dir(model).toString(), "--prompt-ids", ids, "--max-tokens", "24",
				"--temperature", "0", "--ignore-eos", "--print-ids");
		assertThat(code).as(err.toString()).isZero();
		String expected = Arrays.stream(c.greedyIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		assertThat(out.toString(StandardCharsets.UTF_8).strip()).isEqualTo(expected);
	}

	/** An F16 KV cache from the command line: the golden ids still (GoldenTest checks every configuration). */
	@Test
	void anF16KvCacheGivesTheGoldenIds() {
		GoldenCase c = SharedModels.golden("tiny-random-mistral").get(9);
		String ids = Arrays.stream(c.promptIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		int code = run("--model", SharedModels.dir("tiny-random-mistral").toString(), "--prompt-ids", ids, "--max-tokens",
				"24", "--temperature", "0", "--ignore-eos", "--print-ids", "--kv-cache-dtype", "f16");
		assertThat(code).as(err.toString()).isZero();
		String expected = Arrays.stream(c.greedyIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		assertThat(out.toString(StandardCharsets.UTF_8).strip()).isEqualTo(expected);
	}

	/** Speculative decoding from the command line: the same golden ids (SpeculativeGoldenTest checks every configuration). */
	@Test
	void speculativeDecodingGivesTheGoldenIds() {
		GoldenCase c = SharedModels.golden("stories260K").get(4);
		String ids = Arrays.stream(c.promptIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		int code = run("--model", SharedModels.dir("stories260K").toString(), "--prompt-ids", ids, "--max-tokens", "96",
				"--temperature", "0", "--print-ids", "--speculative-tokens", "4");
		assertThat(code).as(err.toString()).isZero();
		String expected = Arrays.stream(c.greedyIds()).mapToObj(Integer::toString).collect(Collectors.joining(","));
		assertThat(out.toString(StandardCharsets.UTF_8).strip()).isEqualTo(expected);
	}

	@Test
	void printsGoldenCompletionFromText() {
		GoldenCase c = SharedModels.golden("stories260K").get(2);
		int code = run("--model", SharedModels.dir("stories260K").toString(), "--prompt", c.promptText(), "--max-tokens",
				"96");
		assertThat(code).as(err.toString()).isZero();
		assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo(c.completionText() + System.lineSeparator());
	}

	@Test
	void seededSamplingRepeatsItself() {
		String[] args = { "--model", SharedModels.dir("stories260K").toString(), "--prompt", "Once upon a time",
				"--max-tokens", "20", "--temperature", "0.9", "--top-p", "0.95", "--seed", "7", "--print-ids" };
		assertThat(run(args)).as(err.toString()).isZero();
		String first = out.toString(StandardCharsets.UTF_8).strip();
		out.reset();
		assertThat(run(args)).isZero();
		assertThat(out.toString(StandardCharsets.UTF_8).strip()).isEqualTo(first).isNotEmpty();
	}

	@Test
	void badArgumentsExplainThemselves() {
		assertThat(run("--prompt-ids", "1,x", "--model", "/nonexistent")).isEqualTo(2);
		assertThat(err.toString()).contains("--prompt-ids").contains("Usage:");
		err.reset();
		assertThat(run("--model", "/nonexistent", "--prompt", "hi")).isEqualTo(2);
		assertThat(err.toString()).contains("/nonexistent is not a directory");
		err.reset();
		assertThat(run("--model", "x", "--prompt", "hi", "--temperature", "-1")).isEqualTo(2);
		assertThat(err.toString()).contains("temperature must be between 0 and 100");
		err.reset();
		assertThat(run("--model", "x", "--prompt", "hi", "--kv-cache-dtype", "fp8")).isEqualTo(2);
		assertThat(err.toString()).contains("--kv-cache-dtype must be f32, bf16 or f16, got 'fp8'");
		err.reset();
		assertThat(run("--model", "x", "--prompt", "hi", "--dtype", "int4")).isEqualTo(2);
		assertThat(err.toString()).contains("--dtype must be auto, bf16 or f32, got 'int4'");
		err.reset();
		assertThat(run("--model", "x", "--prompt", "hi", "--weight-pages", "2m")).isEqualTo(2);
		assertThat(err.toString()).contains("--weight-pages must be auto, huge or mapped, got '2m'");
		err.reset();
		assertThat(run("--model", "x", "--prompt", "hi", "--speculative-tokens", "-1")).isEqualTo(2);
		assertThat(err.toString()).contains("--speculative-tokens must be in 0..64, got -1");
	}
}
