package dev.blockserve.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code blockserve chat} in a real terminal: tmux runs it in a pseudo-terminal, the test types two
 * messages and reads the screen. Each answer streams after its prompt and the prompt comes back.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ChatCommandTest {

	static String tmux(String... args) throws Exception {
		List<String> cmd = new java.util.ArrayList<>(List.of("tmux"));
		cmd.addAll(List.of(args));
		Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
		String out = new String(p.getInputStream().readAllBytes());
		p.waitFor(10, TimeUnit.SECONDS);
		return out;
	}

	static String screen(String session) throws Exception {
		return tmux("capture-pane", "-p", "-t", session);
	}

	static String waitFor(String session, int prompts, long timeoutMillis) throws Exception {
		long end = System.currentTimeMillis() + timeoutMillis;
		String s = "";
		while (System.currentTimeMillis() < end) {
			s = screen(session);
			if (s.lines().filter(l -> l.startsWith("> ") || l.equals(">")).count() >= prompts) {
				return s;
			}
			Thread.sleep(200);
		}
		throw new AssertionError("timed out waiting for prompt " + prompts + "; screen:\n" + s);
	}

	@Test
	void answersTwoTurnsInATerminal() throws Exception {
		boolean haveTmux = new ProcessBuilder("tmux", "-V").start().waitFor() == 0;
		if (!haveTmux && "true".equals(System.getenv("CI"))) {
			throw new AssertionError("CI must have tmux (.ci/run installs it)");
		}
		Assumptions.assumeTrue(haveTmux, "tmux is not installed");
		String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
		Path cpFile = Files.createTempFile("blockserve-cp", ".txt");
		Files.writeString(cpFile, "-cp " + System.getProperty("java.class.path"));
		String command = java + " @" + cpFile + " dev.blockserve.BlockserveApplication chat --model "
				+ SharedModels.dir("tiny-random-llama") + " --temperature 0 --max-tokens 8";
		String session = "blockserve-chat-" + ProcessHandle.current().pid();
		tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", command);
		try {
			waitFor(session, 1, 60_000);
			tmux("send-keys", "-t", session, "Hello there", "Enter");
			waitFor(session, 2, 60_000);
			tmux("send-keys", "-t", session, "Tell me more", "Enter");
			String s = waitFor(session, 3, 60_000);
			assertThat(s).contains("Chatting with tiny-random-llama");
			List<String> lines = s.lines().toList();
			int first = indexOf(lines, "> Hello there");
			int second = indexOf(lines, "> Tell me more");
			assertThat(first).isNotNegative();
			assertThat(second).isGreaterThan(first);
			// each answer is printed between its prompt line and the next prompt
			assertThat(String.join("\n", lines.subList(first + 1, second)).strip()).as("first answer").isNotEmpty();
			tmux("send-keys", "-t", session, "/exit", "Enter");
		}
		finally {
			tmux("kill-session", "-t", session);
			Files.deleteIfExists(cpFile);
		}
	}

	static int indexOf(List<String> lines, String prefix) {
		for (int i = 0; i < lines.size(); i++) {
			if (lines.get(i).startsWith(prefix)) {
				return i;
			}
		}
		return -1;
	}
}
