package dev.blockserve.docs;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import dev.blockserve.support.SharedModels;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Runs every shell command block of README.md against the jar this build packaged (an integration test:
 * Maven's failsafe runs it after {@code package}), with tiny-random-llama from ../shared/models in place
 * of the Hub model and a free port in place of 8000, and checks each command's output; the Java blocks
 * must be the code JavaClientsTest runs. A command the test does not know fails it, so a new README
 * command gets a check. The README's test command is the one that runs this test, so it is checked to
 * be what .ci/run calls rather than run again.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ReadmeCommandsIT {

	static final JsonMapper JSON = JsonMapper.builder().build();

	static final Path JAR = Path.of("target", "blockserve.jar").toAbsolutePath();

	record Block(String lang, String text, int line) {
	}

	static List<Block> blocks(String readme) {
		List<Block> out = new ArrayList<>();
		Matcher m = Pattern.compile("(?m)^```(\\w*)\\n(.*?)^```", Pattern.DOTALL).matcher(readme);
		while (m.find()) {
			out.add(new Block(m.group(1), m.group(2), readme.substring(0, m.start()).split("\n", -1).length));
		}
		return out;
	}

	/**
	 * Commands of a block: lines joined where they end with a backslash or sit inside an open single quote
	 * (a JSON body over several lines, as a shell reads it), comments dropped.
	 */
	static List<String> commands(String block) {
		List<String> out = new ArrayList<>();
		StringBuilder open = null;
		for (String c : block.replace("\\\n", " ").split("\n")) {
			if (open != null) {
				open.append(' ').append(c.trim());
				if (open.chars().filter(ch -> ch == '\'').count() % 2 == 0) {
					out.add(open.toString().replaceAll(" +", " "));
					open = null;
				}
				continue;
			}
			if (!c.isBlank() && !c.trim().startsWith("#")) {
				if (c.chars().filter(ch -> ch == '\'').count() % 2 == 1) {
					open = new StringBuilder(c.trim());
					continue;
				}
				out.add(c.trim().replaceAll(" +", " "));
			}
		}
		assertThat(open).as("a README command with an unclosed quote").isNull();
		return out;
	}

	record Run(int exit, String output) {
	}

	static Run bash(String command, String stdin, int timeoutSeconds) throws Exception {
		Process p = new ProcessBuilder("bash", "-c", command).redirectErrorStream(true).start();
		p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
		p.getOutputStream().close();
		byte[] out = p.getInputStream().readAllBytes();
		assertThat(p.waitFor(timeoutSeconds, TimeUnit.SECONDS)).as("'%s' ends within %d s", command, timeoutSeconds).isTrue();
		return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
	}

	@Test
	void everyCommandBlockRunsAndSaysWhatItShould() throws Exception {
		assertThat(JAR).as("the jar this build packaged").exists();
		String readme = Files.readString(Path.of("README.md"));
		Path model = SharedModels.dir("tiny-random-llama").toAbsolutePath();
		int port;
		try (ServerSocket s = new ServerSocket(0)) {
			port = s.getLocalPort();
		}
		Process server = null;
		int checked = 0;
		try {
			for (Block b : blocks(readme)) {
				if (b.lang().equals("java")) {
					assertJavaSnippetIsTested(b);
					checked++;
					continue;
				}
				if (!b.lang().equals("sh")) {
					continue; // the architecture tree and other text
				}
				for (String readmeCommand : commands(b.text())) {
					String c = readmeCommand.replaceAll("\\s+#.*$", "")
						.replace("/path/to/SmolLM2-135M-Instruct", model.toString())
						.replace("/path/to/model-dir", model.toString())
						.replace("--model DIR", "--model " + model)
						.replace("SmolLM2-135M-Instruct", "tiny-random-llama")
						.replace("localhost:8000", "localhost:" + port)
						.replace("target/blockserve.jar", JAR.toString());
					String where = "README.md line " + b.line() + ": " + readmeCommand;
					checked++;
					if (c.equals("./mvnw -B verify")) {
						// the command running this test: .ci/run must call exactly it
						assertThat(Files.readString(Path.of(".ci", "run"))).as(where).contains("./mvnw -B verify");
					}
					else if (c.startsWith("./mvnw -B -DskipTests package && java -jar ")) {
						// the package step made JAR (this build); the serve step starts the server
						String serve = c.substring(c.indexOf("&& ") + 3) + " --server.port=" + port;
						server = new ProcessBuilder("bash", "-c", "exec " + serve).redirectErrorStream(true).start();
						String ready = awaitLine(server, "blockserve ready:", 120);
						assertThat(ready).as(where).contains("http://localhost:" + port + "/v1").contains("model 'tiny-random-llama'");
					}
					else if (c.startsWith("curl ") && c.contains("/v1/completions")) {
						Run r = bash(c + " -s", "", 60);
						assertThat(r.output()).as(where).contains("\"object\":\"text_completion\"").contains("\"choices\"");
					}
					else if (c.startsWith("curl ") && c.contains("/v1/chat/completions") && c.contains("\"response_format\"")) {
						Run r = bash(c + " -s", "", 60);
						JsonNode choice = JSON.readTree(r.output()).path("choices").get(0);
						assertThat(choice.path("finish_reason").asString()).as(where + "\n" + r.output()).isEqualTo("stop");
						JsonNode value = JSON.readTree(choice.path("message").path("content").asString());
						assertThat(value.path("city").isString() && value.path("population").isIntegralNumber())
							.as(where + ": the answer follows the schema\n" + r.output()).isTrue();
					}
					else if (c.startsWith("curl ") && c.contains("/v1/chat/completions") && c.contains("\"tool_choice\": \"required\"")) {
						Run r = bash(c + " -s", "", 60);
						JsonNode choice = JSON.readTree(r.output()).path("choices").get(0);
						assertThat(choice.path("finish_reason").asString()).as(where + "\n" + r.output()).isEqualTo("tool_calls");
						JsonNode call = choice.path("message").path("tool_calls").get(0);
						assertThat(call.path("function").path("name").asString()).as(where).isEqualTo("get_weather");
						JsonNode args = JSON.readTree(call.path("function").path("arguments").asString());
						assertThat(args.path("unit").asString()).as(where + "\n" + r.output()).isIn("celsius", "fahrenheit");
					}
					else if (c.startsWith("curl ") && c.contains("/v1/chat/completions") && c.contains("\"stream\": true")) {
						Run r = bash(c + " -s", "", 60);
						assertThat(r.output()).as(where).contains("chat.completion.chunk").contains("data: [DONE]");
					}
					else if (c.contains(" chat --model ")) {
						Run r = bash(c, "Hello\n/exit\n", 120);
						assertThat(r.exit()).as(where + "\n" + r.output()).isZero();
						assertThat(r.output()).as(where).contains("tiny-random-llama");
					}
					else if (c.contains(" generate ") && c.contains("--print-ids")) {
						Run r = bash(c, "", 120);
						assertThat(r.exit()).as(where + "\n" + r.output()).isZero();
						// the ids on one line, then the summary
						assertThat(r.output().lines().filter(l -> l.matches("\\d+(,\\d+){23}"))).as(where + ": 24 ids\n" + r.output())
							.hasSize(1);
						assertThat(r.output()).as(where).contains("24 new tokens").contains("finish: length");
					}
					else if (c.contains(" perplexity ")) {
						Run r = bash(c, "", 300);
						assertThat(r.exit()).as(where + "\n" + r.output()).isZero();
						assertThat(r.output()).as(where).containsPattern("Final estimate: PPL = [0-9.]+ \\+/- [0-9.]+");
					}
					else if (c.contains(" generate ")) {
						Run r = bash(c, "", 120);
						assertThat(r.exit()).as(where + "\n" + r.output()).isZero();
						assertThat(r.output().strip()).as(where).isNotEmpty();
					}
					else if (c.startsWith("docker ") || c.startsWith("MODEL_DIR=")) {
						checkContainerCommand(c, where, port);
					}
					else {
						fail(where + ": a README command this test does not know; teach it what the command should print");
					}
				}
			}
		}
		finally {
			if (server != null) {
				server.destroy();
				server.waitFor(30, TimeUnit.SECONDS);
			}
		}
		assertThat(checked).as("README blocks and commands checked").isGreaterThanOrEqualTo(9);
	}

	/**
	 * The container commands: the image must be the one .ci/run built from this Dockerfile (a rebuild here
	 * would take minutes); {@code docker run} is run (detached, on a free port) and must serve; the compose
	 * lines must be accepted by Docker Compose (the stack itself runs in BlockserveContainerTest). Without a
	 * Docker engine they are skipped with a line in the log, except under CI, which has one.
	 */
	static void checkContainerCommand(String c, String where, int port) throws Exception {
		boolean docker = bash("docker info", "", 60).exit() == 0;
		if (!docker) {
			assertThat(System.getenv("CI")).as(where + ": CI has a Docker engine").isNull();
			System.out.println("skipped (no Docker engine): " + where);
			return;
		}
		String image = System.getenv().getOrDefault("BLOCKSERVE_IMAGE", "blockserve:local");
		if (c.startsWith("docker build ")) {
			Run r = bash("docker image inspect -f '{{.Id}}' " + image, "", 60);
			assertThat(r.exit()).as(where + ": the image .ci/run builds from this Dockerfile\n" + r.output()).isZero();
		}
		else if (c.startsWith("docker run ")) {
			int hostPort;
			try (ServerSocket s = new ServerSocket(0)) {
				hostPort = s.getLocalPort();
			}
			String detached = c.replace("docker run --rm", "docker run -d --rm").replace("127.0.0.1:8000:8000",
					"127.0.0.1:" + hostPort + ":8000").replace("blockserve:local", image);
			Run started = bash(detached, "", 120);
			assertThat(started.exit()).as(where + "\n" + started.output()).isZero();
			String id = started.output().strip().lines().reduce((x, y) -> y).orElseThrow();
			try {
				Run models = bash("for i in $(seq 1 120); do curl -sf http://127.0.0.1:" + hostPort
						+ "/v1/models && exit 0; sleep 1; done; exit 1", "", 180);
				assertThat(models.exit()).as(where + ": serves within 2 minutes\n" + models.output()).isZero();
				assertThat(models.output()).as(where).contains("\"id\":\"model\"");
			}
			finally {
				bash("docker stop " + id, "", 60);
			}
		}
		else if (c.startsWith("MODEL_DIR=") && c.contains(" docker compose ")) {
			String compose = bash("docker compose version", "", 30).exit() == 0 ? "docker compose" : "docker-compose";
			String config = c.replace(" docker compose ", " " + compose + " ").replaceAll(" up$", " config --quiet");
			Run r = bash(config, "", 60);
			assertThat(r.exit()).as(where + " (as " + config + ")\n" + r.output()).isZero();
		}
		else {
			fail(where + ": a README container command this test does not know");
		}
	}

	/** A README Java snippet is the code JavaClientsTest runs (its URL and model name aside). */
	static void assertJavaSnippetIsTested(Block b) throws IOException {
		String test = Files.readString(Path.of("src/test/java/dev/blockserve/api/JavaClientsTest.java"));
		String snippet = b.text().replace("\"http://localhost:8000/v1\"", "baseUrl()")
			.replace("SmolLM2-135M-Instruct", "tiny-random-llama");
		assertThat(squash(test)).as("README.md line %d: the Java snippet must be JavaClientsTest's code", b.line())
			.contains(squash(snippet));
	}

	static String squash(String s) {
		return s.replaceAll("\\s+", " ").trim();
	}

	static String awaitLine(Process p, String marker, int seconds) throws Exception {
		var reader = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
		StringBuilder seen = new StringBuilder();
		var lines = new java.util.concurrent.LinkedBlockingQueue<String>();
		Thread t = new Thread(() -> {
			try {
				for (String l; (l = reader.readLine()) != null;) {
					lines.add(l);
				}
			}
			catch (IOException e) {
				// the process ended
			}
		}, "readme-server-output");
		t.setDaemon(true);
		t.start();
		while (System.nanoTime() < end) {
			String l = lines.poll(1, TimeUnit.SECONDS);
			if (l != null) {
				seen.append(l).append('\n');
				if (l.contains(marker)) {
					return l;
				}
			}
			else if (!p.isAlive()) {
				break;
			}
		}
		fail("the server did not print '" + marker + "':\n" + seen);
		return null;
	}
}
