package dev.blockserve.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
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
 * {@code blockserve generate}: loads a model (a directory or a Hugging Face id) and generates from text
 * or token ids through the engine core, without HTTP, streaming the text to the terminal as it comes.
 * Runs on the calling thread.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, versionProvider = Cli.VersionProvider.class,
		description = "Generate from a prompt without a server, streaming the text as it comes.",
		footer = { "", "Examples:",
				"  blockserve generate --model ../models/stories260K --prompt \"Once upon a time\" --max-tokens 64",
				"  blockserve generate --model DIR --prompt-ids 1,403,407 --max-tokens 24 --temperature 0 --ignore-eos --print-ids" })
public final class GenerateCommand implements Callable<Integer> {

	@Spec
	CommandLine.Model.CommandSpec spec;

	@CommandLine.Mixin
	LocalModelOptions local;

	@CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
	Prompt prompt;

	static final class Prompt {

		@Option(names = "--prompt", paramLabel = "TEXT", description = "the prompt as text")
		String text;

		@Option(names = "--prompt-ids", paramLabel = "ID,ID,...", split = ",", description = "the prompt as token ids")
		int[] ids;
	}

	@Option(names = "--max-tokens", defaultValue = "64", description = "new tokens at most (default: ${DEFAULT-VALUE})")
	int maxTokens;

	@CommandLine.Mixin
	SamplingOptions sampling;

	@Option(names = "--seed", description = "seed of the sampling stream (default: random)")
	Long seed;

	@Option(names = "--ignore-eos", description = "keep generating past the model's EOS tokens")
	boolean ignoreEos;

	@Option(names = "--print-ids", description = "print the generated token ids instead of text")
	boolean printIds;

	/** Runs the command line {@code args}; returns the exit code (2 for bad arguments). */
	public static int run(String[] args, java.io.PrintStream out, java.io.PrintStream err) {
		return new CommandLine(new GenerateCommand()).setOut(new PrintWriter(out, true))
			.setErr(new PrintWriter(err, true))
			.execute(args);
	}

	/**
	 * The command line runs without Spring, so logback would print DJL's start-up chatter (INFO, and a CUDA
	 * probe's WARN) into the generated text on stdout: only warnings are logged, and DJL's errors.
	 */
	static void quietLogs() {
		if (org.slf4j.LoggerFactory.getILoggerFactory() instanceof ch.qos.logback.classic.LoggerContext ctx) {
			ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).setLevel(ch.qos.logback.classic.Level.WARN);
			ctx.getLogger("ai.djl").setLevel(ch.qos.logback.classic.Level.ERROR);
		}
	}

	@Override
	public Integer call() {
		quietLogs();
		PrintWriter out = spec.commandLine().getOut();
		PrintWriter err = spec.commandLine().getErr();
		SamplingParams params;
		try {
			params = sampling.applyTo(SamplingParams.builder()).maxTokens(maxTokens).seed(seed).ignoreEos(ignoreEos).build();
		}
		catch (IllegalArgumentException e) {
			throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
		}
		Path dir = local.resolve(spec);
		try (LocalEngine engine = local.open(dir)) {
			int[] ids = prompt.ids != null ? prompt.ids : engine.tokenizer.encode(prompt.text, true);
			Printer printer = new Printer(out, printIds);
			long t0 = System.nanoTime();
			engine.core.add(1, ids, params, 0, t0, 0, printer);
			engine.runToCompletion();
			if (printer.error != null) {
				throw printer.error;
			}
			printer.finish();
			err.printf("[%d prompt + %d new tokens in %.2f s, finish: %s]%n", ids.length, printer.count,
					(System.nanoTime() - t0) / 1e9, printer.finish);
			return 0;
		}
		catch (RuntimeException e) {
			err.println("error: " + e.getMessage());
			return 1;
		}
	}

	/** Prints text as the engine produces it (or collects ids); called on this thread by the core. */
	private static final class Printer implements RequestOutput {

		final PrintWriter out;

		final boolean ids;

		final StringBuilder idList = new StringBuilder();

		int count;

		String finish;

		EngineException error;

		Printer(PrintWriter out, boolean ids) {
			this.out = out;
			this.ids = ids;
		}

		@Override
		public void event(GenerationEvent e) {
			for (int t : e.tokenIds()) {
				idList.append(count++ > 0 ? "," : "").append(t);
			}
			if (!ids && !e.text().isEmpty()) {
				out.print(e.text());
				out.flush();
			}
			if (e.finished()) {
				finish = e.finishReason().openAi();
			}
		}

		@Override
		public void complete() {
		}

		@Override
		public void fail(EngineException e) {
			error = e;
		}

		void finish() {
			out.println(ids ? idList : "");
			out.flush();
		}
	}
}
