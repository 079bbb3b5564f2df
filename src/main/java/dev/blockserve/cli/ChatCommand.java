package dev.blockserve.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import dev.blockserve.chat.ChatTemplate;
import dev.blockserve.chat.ReasoningStream;
import dev.blockserve.engine.EngineException;
import dev.blockserve.engine.GenerationEvent;
import dev.blockserve.engine.RequestOutput;
import dev.blockserve.engine.SamplingParams;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code blockserve chat}: an interactive chat in the terminal through the model's own chat template,
 * keeping the conversation's history (the prefix cache reuses its KV from turn to turn). Reads lines from
 * standard input; {@code /reset} forgets the history, {@code /exit} or end of input ends. A reasoning
 * model's {@code <think>} block is shown apart from the answer (dimmed on a terminal that takes ANSI
 * styles, else under a "thinking:" label). Runs on the calling thread.
 */
@Command(name = "chat", mixinStandardHelpOptions = true, versionProvider = Cli.VersionProvider.class,
		description = "Chat with a model in the terminal, through its chat template, keeping the history.",
		footer = { "", "Type a message and Enter; /reset forgets the conversation, /exit (or end of input) quits." })
public final class ChatCommand implements Callable<Integer> {

	@Spec
	CommandLine.Model.CommandSpec spec;

	@CommandLine.Mixin
	LocalModelOptions local;

	@Option(names = "--system", description = "a system message that opens the conversation")
	String system;

	@Option(names = "--max-tokens", defaultValue = "256", description = "new tokens per answer at most (default: ${DEFAULT-VALUE})")
	int maxTokens;

	@Option(names = "--temperature", defaultValue = "0.7", description = "0 for greedy (default: ${DEFAULT-VALUE})")
	double temperature;

	@Option(names = "--top-p", defaultValue = "0.9", description = "nucleus sampling (default: ${DEFAULT-VALUE})")
	double topP;

	@Option(names = "--seed", description = "seed of the sampling stream (default: random)")
	Long seed;

	@Override
	public Integer call() throws Exception {
		GenerateCommand.quietLogs();
		PrintWriter out = spec.commandLine().getOut();
		SamplingParams params;
		try {
			params = SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP).seed(seed).build();
		}
		catch (IllegalArgumentException e) {
			throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
		}
		Path dir = local.resolve(spec);
		ChatTemplate template = ChatTemplate.load(dir);
		if (template == null) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--model: " + dir + " has no chat template (tokenizer_config.json); use generate instead");
		}
		boolean reasons = ReasoningStream.templateReasons(template.source());
		boolean ansi = CommandLine.Help.Ansi.AUTO.enabled();
		try (LocalEngine engine = local.open(dir)) {
			List<Map<String, Object>> history = new ArrayList<>();
			if (system != null) {
				history.add(Map.of("role", "system", "content", system));
			}
			int context = engine.model.maxPositions();
			BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
			out.println("Chatting with " + dir.getFileName() + " (" + context + "-token context). /reset forgets, /exit quits.");
			long id = 1;
			while (true) {
				out.print("> ");
				out.flush();
				String line = in.readLine();
				if (line == null || line.strip().equals("/exit")) {
					out.println();
					return 0;
				}
				if (line.strip().equals("/reset")) {
					history.removeIf(msg -> !"system".equals(msg.get("role")));
					out.println("(history cleared)");
					continue;
				}
				if (line.isBlank()) {
					continue;
				}
				history.add(Map.of("role", "user", "content", line));
				String rendered = template.render(history, null, true, null);
				int[] prompt = engine.tokenizer.encode(rendered, false);
				int room = context - prompt.length;
				if (room < 1) {
					out.println("(the conversation fills the context; /reset to start over)");
					history.remove(history.size() - 1);
					continue;
				}
				Answer answer = new Answer(out, reasons ? ReasoningStream.create(ReasoningStream.opens(rendered)) : null, ansi);
				engine.core.add(id++, prompt, params.toBuilder().maxTokens(Math.min(maxTokens, room)).build(), 0,
						System.nanoTime(), 0, answer);
				engine.runToCompletion();
				out.println();
				if (answer.error != null) {
					out.println("(failed: " + answer.error.getMessage() + ")");
					history.remove(history.size() - 1);
					continue;
				}
				history.add(Map.of("role", "assistant", "content", answer.text.toString()));
			}
		}
	}

	/**
	 * Streams an answer to the terminal, its reasoning apart when {@code think} splits it, and keeps the
	 * whole text for the history (the chat template drops the reasoning itself); called on this thread.
	 */
	static final class Answer implements RequestOutput {

		static final String DIM = "\u001b[2m";

		static final String RESET = "\u001b[0m";

		final PrintWriter out;

		final ReasoningStream think;

		final boolean ansi;

		final StringBuilder text = new StringBuilder();

		EngineException error;

		private boolean inReasoning;

		Answer(PrintWriter out, ReasoningStream think, boolean ansi) {
			this.out = out;
			this.think = think;
			this.ansi = ansi;
		}

		@Override
		public void event(GenerationEvent e) {
			text.append(e.text());
			if (think == null) {
				out.print(e.text());
			}
			else {
				ReasoningStream.Split s = think.push(e.text());
				show(s.reasoning(), s.content());
				if (e.finished()) {
					ReasoningStream.Split rest = think.finish();
					show(rest.reasoning(), rest.content());
					endReasoning();
				}
			}
			out.flush();
		}

		private void show(String reasoning, String content) {
			if (!reasoning.isEmpty()) {
				if (!inReasoning) {
					out.print(ansi ? DIM : "thinking: ");
					inReasoning = true;
				}
				out.print(reasoning);
			}
			if (!content.isEmpty()) {
				endReasoning();
				out.print(content);
			}
		}

		private void endReasoning() {
			if (inReasoning) {
				out.print(ansi ? RESET + "\n" : "\n");
				inReasoning = false;
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
