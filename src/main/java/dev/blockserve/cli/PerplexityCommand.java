package dev.blockserve.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

import dev.blockserve.engine.EngineException;
import dev.blockserve.engine.GenerationEvent;
import dev.blockserve.engine.RequestOutput;
import dev.blockserve.engine.SamplingParams;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code blockserve perplexity}: the model's perplexity on a text file, computed as llama.cpp's
 * {@code llama-perplexity} does so the two can be compared on the same weights and text: the text is
 * tokenized whole (with BOS where the model adds one), cut into chunks of {@code --ctx} tokens whose first
 * token becomes BOS, and in each chunk the tokens of the second half are scored, each given all the chunk's
 * tokens before it. Runs through the engine's prompt logprobs, on the calling thread.
 */
@Command(name = "perplexity", mixinStandardHelpOptions = true, versionProvider = Cli.VersionProvider.class,
		description = "Perplexity of a model on a text file, chunked and scored as llama.cpp's llama-perplexity does.",
		footer = { "", "Prints the running estimate after each chunk ([1]12.34,[2]...) and then",
				"'Final estimate: PPL = X +/- E' (E: the standard error of the mean token NLL, carried to PPL).", "",
				"Example:", "  blockserve perplexity --model DIR --file wiki.test.raw --ctx 512" })
public final class PerplexityCommand implements Callable<Integer> {

	@Spec
	CommandLine.Model.CommandSpec spec;

	@CommandLine.Mixin
	LocalModelOptions local;

	@Option(names = { "--file", "-f" }, required = true, paramLabel = "FILE", description = "the text (UTF-8)")
	Path file;

	@Option(names = "--ctx", defaultValue = "512", description = "tokens per chunk (default: ${DEFAULT-VALUE})")
	int ctx;

	@Option(names = "--chunks", defaultValue = "-1", description = "score at most this many chunks; -1 for all")
	int maxChunks;

	/** Runs the command line {@code args}; returns the exit code (2 for bad arguments). */
	public static int run(String[] args, java.io.PrintStream out, java.io.PrintStream err) {
		return new CommandLine(new PerplexityCommand()).setOut(new PrintWriter(out, true))
			.setErr(new PrintWriter(err, true))
			.execute(args);
	}

	/** The running sums of the scored tokens' negative log-likelihoods. */
	static final class Nll {

		double sum;

		double sumSquares;

		long count;

		void add(double nll) {
			sum += nll;
			sumSquares += nll * nll;
			count++;
		}

		double ppl() {
			return Math.exp(sum / count);
		}

		/** The standard error of the mean NLL carried to PPL (d exp(x) = exp(x) dx), as llama.cpp reports it. */
		double pplError() {
			if (count < 2) {
				return Double.NaN;
			}
			double mean = sum / count;
			double variance = Math.max(0, sumSquares / count - mean * mean);
			return ppl() * Math.sqrt(variance / (count - 1));
		}
	}

	@Override
	public Integer call() {
		GenerateCommand.quietLogs();
		PrintWriter out = spec.commandLine().getOut();
		PrintWriter err = spec.commandLine().getErr();
		String text;
		try {
			text = Files.readString(file, StandardCharsets.UTF_8);
		}
		catch (IOException e) {
			throw new CommandLine.ParameterException(spec.commandLine(), "--file: cannot read " + file + ": " + e.getMessage());
		}
		if (ctx < 4) {
			throw new CommandLine.ParameterException(spec.commandLine(), "--ctx must be at least 4, got " + ctx);
		}
		Path dir = local.resolve(spec);
		try (LocalEngine engine = local.open(dir)) {
			if (ctx > engine.model.maxPositions()) {
				throw new CommandLine.ParameterException(spec.commandLine(),
						"--ctx " + ctx + " is over the model's context length " + engine.model.maxPositions());
			}
			int[] tokens = engine.tokenizer.encode(text, true);
			int[] bosOnly = engine.tokenizer.encode("", true);
			int bos = bosOnly.length == 1 ? bosOnly[0] : -1;
			int chunks = tokens.length / ctx;
			if (maxChunks >= 0) {
				chunks = Math.min(chunks, maxChunks);
			}
			if (chunks == 0) {
				err.println("error: the text has " + tokens.length + " tokens; a chunk of --ctx " + ctx + " needs at least that many");
				return 1;
			}
			err.printf("perplexity: %d tokens, %d chunks of %d, scoring positions %d..%d of each%n", tokens.length, chunks,
					ctx, ctx / 2 + 1, ctx - 1);
			SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(1).ignoreEos(true).promptLogprobs(0).build();
			Nll nll = new Nll();
			long t0 = System.nanoTime();
			for (int c = 0; c < chunks; c++) {
				int[] chunk = Arrays.copyOfRange(tokens, c * ctx, (c + 1) * ctx);
				if (bos >= 0) {
					chunk[0] = bos;
				}
				Collector collector = new Collector();
				engine.core.add(c + 1, chunk, params, 0, System.nanoTime(), 0, collector);
				engine.runToCompletion();
				if (collector.error != null) {
					throw collector.error;
				}
				for (int j = ctx / 2 + 1; j < ctx; j++) {
					nll.add(-collector.lps.get(j).logprob());
				}
				out.printf("[%d]%.4f,", c + 1, nll.ppl());
				out.flush();
			}
			double seconds = (System.nanoTime() - t0) / 1e9;
			out.println();
			out.printf("Final estimate: PPL = %.4f +/- %.5f%n", nll.ppl(), nll.pplError());
			err.printf("[%d chunks, %d tokens scored, %.2f s, %.1f tokens/s]%n", chunks, nll.count, seconds,
					chunks * (double) ctx / seconds);
			return 0;
		}
		catch (RuntimeException e) {
			if (e instanceof CommandLine.ParameterException p) {
				throw p;
			}
			err.println("error: " + e.getMessage());
			return 1;
		}
	}

	/** Keeps a chunk's prompt logprobs; called on this thread by the core. */
	private static final class Collector implements RequestOutput {

		List<GenerationEvent.TokenLogprob> lps;

		EngineException error;

		@Override
		public void event(GenerationEvent e) {
			if (e.promptLogprobs() != null) {
				lps = e.promptLogprobs();
			}
		}

		@Override
		public void complete() {
		}

		@Override
		public void fail(EngineException e) {
			error = e;
		}
	}
}
