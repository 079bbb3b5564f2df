package dev.blockserve.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Consumer;

import dev.blockserve.api.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * blockserve's command line: {@code serve} (the default, the OpenAI-compatible server), {@code generate}
 * (one prompt, no server), {@code chat}, {@code bench} (a load test of a running server), {@code perplexity}
 * (a model on a text file, as llama.cpp measures it) and {@code --version}. Help and version answer at
 * once, without loading a model or starting Spring. Runs on the main thread.
 */
@Command(name = "blockserve", mixinStandardHelpOptions = true, versionProvider = Cli.VersionProvider.class,
		description = "An LLM server with a paged KV cache, speaking the OpenAI API.",
		subcommands = { Cli.Serve.class, GenerateCommand.class, ChatCommand.class, BenchCommand.class,
				PerplexityCommand.class },
		footer = { "", "Without a command, blockserve serves: 'blockserve --blockserve.model=DIR' is 'blockserve serve "
				+ "--blockserve.model=DIR'.", "'blockserve COMMAND --help' describes each command." })
public final class Cli implements Callable<Integer> {

	/** Starts the server with Spring arguments; set by the application's main (tests replace it). */
	static Consumer<String[]> server = args -> {
		throw new IllegalStateException("no server entry point");
	};

	@Override
	public Integer call() {
		return new Serve().call();
	}

	/** The version from the build. */
	public static final class VersionProvider implements CommandLine.IVersionProvider {

		@Override
		public String[] getVersion() {
			return new String[] { "blockserve " + Version.VERSION };
		}
	}

	@Command(name = "serve", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
			description = { "Serve the OpenAI-compatible API (the default command).",
					"Every option is a Spring Boot property as --name=value; the common ones:" },
			footer = { "  --blockserve.model=DIR|ID        model directory or Hugging Face id (default HuggingFaceTB/SmolLM2-135M-Instruct)",
					"  --blockserve.served-model-name=N  the name clients send as \"model\" (default: the directory name or id)",
					"  --server.port=8000                HTTP port",
					"  --blockserve.api.api-keys=K1,K2   require Authorization: Bearer <key>",
					"  --blockserve.kv-cache.memory=2GB (default: sized to the model), --blockserve.kv-cache.block-size=16, --blockserve.device=auto|cpu|cuda",
					"  --blockserve.admission.max-waiting-requests=256, --blockserve.api.request-timeout=10m",
					"The README lists every property. Clients use http://HOST:PORT/v1 as their base URL." })
	static final class Serve implements Callable<Integer> {

		@Parameters(arity = "0..*", paramLabel = "--name=value", description = "Spring Boot properties")
		List<String> properties = new ArrayList<>();

		@Override
		public Integer call() {
			server.accept(properties.toArray(String[]::new));
			return 0;
		}
	}

	/**
	 * Runs the command line; the server keeps running after {@code serve} returns. Arguments that are not
	 * a command or a help/version flag go to {@code serve} as they are, so the old form keeps working.
	 */
	public static int run(String[] args, Consumer<String[]> serve, PrintWriter out, PrintWriter err) {
		server = serve;
		CommandLine cl = new CommandLine(new Cli()).setOut(out).setErr(err);
		// A failure inside a command: the server's start-up failure was already reported by Spring (cause and
		// fix); any other gets one line, not picocli's stack trace.
		cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
			if (!(cmd.getCommand() instanceof Serve) && !(cmd.getCommand() instanceof Cli)) {
				cmd.getErr().println("error: " + e.getMessage());
			}
			return 1;
		});
		cl.setUnmatchedOptionsArePositionalParams(true);
		cl.getSubcommands().get("serve").setUnmatchedOptionsArePositionalParams(true);
		boolean command = args.length > 0 && (cl.getSubcommands().containsKey(args[0]) || List
			.of("-h", "--help", "-V", "--version").contains(args[0]));
		if (!command) {
			String[] a = new String[args.length + 1];
			a[0] = "serve";
			System.arraycopy(args, 0, a, 1, args.length);
			args = a;
		}
		return cl.execute(args);
	}
}
