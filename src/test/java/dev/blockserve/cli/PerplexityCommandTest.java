package dev.blockserve.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import dev.blockserve.engine.EngineException;
import dev.blockserve.engine.GenerationEvent;
import dev.blockserve.engine.RequestOutput;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class PerplexityCommandTest {

	private final ByteArrayOutputStream out = new ByteArrayOutputStream();

	private final ByteArrayOutputStream err = new ByteArrayOutputStream();

	@TempDir
	Path tmp;

	private int run(String... args) {
		return PerplexityCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
				new PrintStream(err, true, StandardCharsets.UTF_8));
	}

	/** The stories the model wrote itself (the golden completions), as one text. */
	private Path storiesFile() throws Exception {
		String text = SharedModels.golden("stories260K").stream().map(c -> c.promptText() + c.completionText())
			.collect(Collectors.joining("\n"));
		return Files.writeString(tmp.resolve("stories.txt"), text);
	}

	/** The logprob of {@code prompt[j]} after {@code prompt[0..j)} on the decode path: forced by logit_bias, reported raw. */
	private static double decodeLogprob(LocalEngine engine, int[] prompt, int j) {
		float[] lp = new float[1];
		EngineException[] error = new EngineException[1];
		SamplingParams forced = SamplingParams.greedy(1).toBuilder().logprobs(0)
			.logitBias(SamplingParams.LogitBias.of(Map.of(prompt[j], 100))).build();
		engine.core.add(1000 + j, Arrays.copyOf(prompt, j), forced, 0, System.nanoTime(), 0, new RequestOutput() {
			@Override
			public void event(GenerationEvent e) {
				if (e.logprobs() != null) {
					assertThat(e.logprobs().get(0).token()).isEqualTo(prompt[j]);
					lp[0] = e.logprobs().get(0).logprob();
				}
			}

			@Override
			public void complete() {
			}

			@Override
			public void fail(EngineException e) {
				error[0] = e;
			}
		});
		engine.runToCompletion();
		assertThat(error[0]).isNull();
		return lp[0];
	}

	/**
	 * llama-perplexity's recipe, recomputed here on the decode path: chunks of --ctx tokens, BOS first, the
	 * second half of each scored; PPL = exp(mean NLL).
	 */
	@Test
	void matchesTheRecipeRecomputedOnTheDecodePath() throws Exception {
		Path text = storiesFile();
		int ctx = 16, chunks = 3;
		Path dir = SharedModels.dir("stories260K");
		int code = run("--model", dir.toString(), "--file", text.toString(), "--ctx", String.valueOf(ctx), "--chunks",
				String.valueOf(chunks));
		assertThat(code).as(err.toString()).isZero();
		String printed = out.toString(StandardCharsets.UTF_8);
		assertThat(printed).containsPattern("^\\[1\\][0-9.]+,\\[2\\][0-9.]+,\\[3\\][0-9.]+,");
		Matcher m = Pattern.compile("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)").matcher(printed);
		assertThat(m.find()).as(printed).isTrue();
		double ppl = Double.parseDouble(m.group(1));

		double sum = 0, sumSq = 0;
		int n = 0;
		try (LocalEngine engine = new LocalEngine(dir, 0, 16)) {
			int[] tokens = engine.tokenizer.encode(Files.readString(text), true);
			int bos = engine.tokenizer.encode("", true)[0];
			for (int c = 0; c < chunks; c++) {
				int[] chunk = Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
				chunk[0] = bos;
				for (int j = ctx / 2 + 1; j < ctx; j++) {
					double nll = -decodeLogprob(engine, chunk, j);
					sum += nll;
					sumSq += nll * nll;
					n++;
				}
			}
		}
		assertThat(n).isEqualTo(chunks * (ctx - 1 - ctx / 2));
		double expected = Math.exp(sum / n);
		assertThat(ppl).isCloseTo(expected, within(expected * 1e-4 + 1e-4));
		double mean = sum / n;
		double expectedError = expected * Math.sqrt((sumSq / n - mean * mean) / (n - 1));
		assertThat(Double.parseDouble(m.group(2))).isCloseTo(expectedError, within(expectedError * 1e-3 + 1e-5));
		assertThat(err.toString()).contains("3 chunks, 21 tokens scored");
	}

	@Test
	void clearErrors() throws Exception {
		Path dir = SharedModels.dir("stories260K");
		Path tiny = Files.writeString(tmp.resolve("tiny.txt"), "Once upon a time");
		assertThat(run("--model", dir.toString(), "--file", tiny.toString(), "--ctx", "64")).isEqualTo(1);
		assertThat(err.toString()).contains("a chunk of --ctx 64 needs at least that many");
		err.reset();
		assertThat(run("--model", dir.toString(), "--file", tiny.toString(), "--ctx", "100000")).isEqualTo(2);
		assertThat(err.toString()).contains("over the model's context length 512");
		err.reset();
		assertThat(run("--model", dir.toString(), "--file", tmp.resolve("none.txt").toString())).isEqualTo(2);
		assertThat(err.toString()).contains("cannot read");
	}
}
