package dev.blockserve.api;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.blockserve.BlockserveApplication;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The official OpenAI Node SDK against the server, as the README says it works: `npm install openai` into
 * target/node-sdk (the version the local Node supports: 6.x needs Node 20), then a script
 * (src/test/resources/node/openai-sdk-check.mjs) that lists models, chats (called, streamed, with
 * logprobs), asks the Responses API (called and streamed), completes with logit_bias and with echo + logprobs,
 * and catches a 400. What it printed must
 * equal the server's own answers over plain HTTP. Under CI Node must be there (.ci/run installs it);
 * elsewhere the test is skipped without it.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class NodeSdkTest {

	static final Path DIR = Path.of("target", "node-sdk");

	@LocalServerPort
	int port;

	record Run(int exit, String output) {
	}

	static Run run(Path dir, int timeoutSeconds, String... command) throws IOException, InterruptedException {
		Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
		if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
			p.destroyForcibly();
			return new Run(-1, "timed out: " + String.join(" ", command));
		}
		return new Run(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
	}

	/** Node's major version, or -1 when there is no node on the PATH. */
	static int nodeMajor() throws InterruptedException {
		try {
			Run r = run(Path.of("."), 30, "node", "--version");
			return r.exit() == 0 ? Integer.parseInt(r.output().strip().replaceAll("^v(\\d+)\\..*$", "$1")) : -1;
		}
		catch (IOException e) {
			return -1;
		}
	}

	JsonNode post(String path, String body) throws Exception {
		HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
				HttpResponse.BodyHandlers.ofString());
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		return Api.JSON.readTree(r.body());
	}

	@Test
	void officialNodeSdk() throws Exception {
		int node = nodeMajor();
		if (System.getenv("CI") != null) {
			assertThat(node).as("CI has Node (.ci/run installs it)").isGreaterThanOrEqualTo(18);
		}
		assumeTrue(node >= 18, "no Node 18+ on the PATH");
		String version = node >= 20 ? "6.49.0" : "4.104.0"; // 6.x supports Node 20 and later
		Files.createDirectories(DIR);
		Path installed = DIR.resolve("node_modules/openai/package.json");
		if (!Files.exists(installed) || !Files.readString(installed).contains("\"version\": \"" + version + "\"")) {
			Run npm = run(DIR, 300, "npm", "install", "--no-audit", "--no-fund", "--no-save", "--prefix", ".", "openai@" + version);
			assertThat(npm.exit()).as("npm install openai@" + version + "\n" + npm.output()).isZero();
		}
		Path script = DIR.resolve("openai-sdk-check.mjs");
		Files.copy(Path.of("src/test/resources/node/openai-sdk-check.mjs"), script, StandardCopyOption.REPLACE_EXISTING);

		JsonNode ids = post("/tokenize", "{\"prompt\": \" cache\", \"add_special_tokens\": false}").path("tokens");
		int forced = ids.get(ids.size() - 1).asInt();
		Run r = run(DIR, 180, "node", script.getFileName().toString(), "http://127.0.0.1:" + port + "/v1", "tiny-random-llama",
				String.valueOf(forced));
		assertThat(r.exit()).as(r.output()).isZero();
		String line = r.output().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow();
		JsonNode got = Api.JSON.readTree(line);

		assertThat(got.path("models").get(0).asString()).isEqualTo("tiny-random-llama");
		String question = "{\"model\": \"tiny-random-llama\", \"messages\": [{\"role\": \"user\", \"content\": \"What is a paged KV cache?\"}], "
				+ "\"max_tokens\": 12, \"temperature\": 0}";
		String answer = post("/v1/chat/completions", question).path("choices").get(0).path("message").path("content").asString();
		assertThat(got.path("chat").asString()).isEqualTo(answer);
		assertThat(got.path("streamed").asString()).isEqualTo(answer);
		// the Responses API: the same question as input, the same answer (output_text is the SDK's own join)
		assertThat(got.path("responseText").asString()).isEqualTo(answer);
		assertThat(got.path("responseStreamed").asString()).isEqualTo(answer);
		assertThat(got.path("responseStatus").asString()).isEqualTo("incomplete"); // 12 tokens of a random model
		assertThat(got.path("responseEvents").toString()).isEqualTo("[\"response.created\",\"response.incomplete\"]");
		assertThat(got.path("chatLogprobs").size()).isEqualTo(got.path("chatUsage").path("completion_tokens").asInt());
		assertThat(got.path("chatLogprobs").get(0).get(2).asInt()).isEqualTo(2);
		assertThat(got.path("streamUsage").path("completion_tokens").asInt()).isEqualTo(got.path("chatUsage").path("completion_tokens").asInt());

		String forcedText = post("/detokenize", "{\"tokens\": " + Collections.nCopies(6, forced) + "}").path("prompt").asString();
		assertThat(got.path("biased").asString()).isEqualTo(forcedText);

		JsonNode echo = got.path("echo");
		assertThat(echo.path("text").asString()).startsWith("Once upon a time");
		assertThat(echo.path("tokens").size()).isEqualTo(echo.path("tokenLogprobs").size());
		int promptTokens = post("/tokenize", "{\"prompt\": \"Once upon a time\"}").path("count").asInt();
		assertThat(echo.path("tokens").size()).isEqualTo(promptTokens + 1);
		assertThat(echo.path("tokenLogprobs").get(0).isNull()).isTrue();
		assertThat(echo.path("tokenLogprobs").get(1).asDouble()).isLessThanOrEqualTo(0.0);

		assertThat(got.path("error").path("badRequest").asBoolean()).as(got.path("error").toString()).isTrue();
		assertThat(got.path("error").path("status").asInt()).isEqualTo(400);
		assertThat(got.path("error").path("param").asString()).isEqualTo("temperature");
		assertThat(got.path("error").path("type").asString()).isEqualTo("invalid_request_error");
		assertThat(List.of(got.path("sdkVersion").asString())).as("the SDK that ran").containsExactly(version);
	}
}
