package dev.blockserve.api;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The server on a Qwen3 model (the shared random one, given the real Qwen3 chat template in a folder
 * built under target/): chat works, and vLLM's chat_template_kwargs reach the template, so
 * enable_thinking=false renders Qwen3's empty think block. The template writes think blocks, so answers
 * are split into reasoning_content and content (a random model writes a block only when a regex makes it).
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class Qwen3ServingTest {

	@LocalServerPort
	int port;

	@DynamicPropertySource
	static void model(DynamicPropertyRegistry r) {
		r.add("blockserve.model", () -> qwen3WithItsTemplate().toString());
	}

	/** tiny-random-qwen3 with tokenizer_config.json's chat_template replaced by Qwen3's own. */
	static Path qwen3WithItsTemplate() {
		return qwen3Variant("qwen3-template", null);
	}

	/**
	 * tiny-random-qwen3 in target/test-models/{@code name}, with Qwen3's own chat template and, when
	 * {@code editTokenizer} is given, its tokenizer.json edited (else linked).
	 */
	static Path qwen3Variant(String name, java.util.function.Consumer<ObjectNode> editTokenizer) {
		try {
			Path src = SharedModels.dir("tiny-random-qwen3");
			Path dir = Path.of("target", "test-models", name).toAbsolutePath();
			Files.createDirectories(dir);
			for (String f : new String[] { "config.json", "model.safetensors", "tokenizer.json", "generation_config.json" }) {
				Files.deleteIfExists(dir.resolve(f));
				if (!f.equals("tokenizer.json") || editTokenizer == null) {
					Files.createSymbolicLink(dir.resolve(f), src.resolve(f).toAbsolutePath());
				}
			}
			ObjectNode tc = (ObjectNode) Api.JSON.readTree(src.resolve("tokenizer_config.json").toFile());
			tc.put("chat_template", Files.readString(Path.of("src", "test", "resources", "chat-templates", "qwen3.jinja")));
			Files.writeString(dir.resolve("tokenizer_config.json"), Api.JSON.writeValueAsString(tc));
			if (editTokenizer != null) {
				ObjectNode t = (ObjectNode) Api.JSON.readTree(src.resolve("tokenizer.json").toFile());
				editTokenizer.accept(t);
				Files.writeString(dir.resolve("tokenizer.json"), Api.JSON.writeValueAsString(t));
			}
			return dir;
		}
		catch (IOException e) {
			throw new UncheckedIOException(e);
		}
	}

	String rendered(Object kwargs) throws Exception {
		var body = new java.util.LinkedHashMap<String, Object>();
		body.put("messages", java.util.List.of(Map.of("role", "user", "content", "What is 2+2?")));
		if (kwargs != null) {
			body.put("chat_template_kwargs", kwargs);
		}
		RawHttp.Response r = RawHttp.request(port, "POST", "/tokenize", null, Api.JSON.writeValueAsString(body));
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		JsonNode tokens = Api.JSON.readTree(r.body()).path("tokens");
		RawHttp.Response text = RawHttp.request(port, "POST", "/detokenize", null,
				Api.JSON.writeValueAsString(Map.of("tokens", tokens)));
		return Api.JSON.readTree(text.body()).path("prompt").asString();
	}

	@Test
	void enableThinkingFalseRendersTheEmptyThinkBlock() throws Exception {
		assertThat(rendered(Map.of("enable_thinking", false))).endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n");
		assertThat(rendered(Map.of("enable_thinking", true))).endsWith("<|im_start|>assistant\n");
		assertThat(rendered(null)).endsWith("<|im_start|>assistant\n");
	}

	@Test
	void chatCompletesOnQwen3AndBadKwargsAre400s() throws Exception {
		String chat = Api.JSON.writeValueAsString(Map.of("messages", java.util.List.of(Map.of("role", "user", "content", "Hi")),
				"max_tokens", 4, "chat_template_kwargs", Map.of("enable_thinking", false)));
		RawHttp.Response ok = RawHttp.request(port, "POST", "/v1/chat/completions", null, chat);
		assertThat(ok.status()).as(ok.body()).isEqualTo(200);
		assertThat(Api.JSON.readTree(ok.body()).path("model").asString()).isEqualTo("qwen3-template");
		RawHttp.Response bad = RawHttp.request(port, "POST", "/v1/chat/completions", null,
				chat.replace("{\"enable_thinking\":false}", "\"x\""));
		assertThat(bad.status()).isEqualTo(400);
		assertThat(bad.body()).contains("chat_template_kwargs");
		RawHttp.Response reserved = RawHttp.request(port, "POST", "/v1/chat/completions", null,
				chat.replace("{\"enable_thinking\":false}", "{\"messages\":[]}"));
		assertThat(reserved.status()).isEqualTo(400);
		assertThat(reserved.body()).contains("may not set 'messages'");
	}

	static final String THINKING = "<think>\\nab[a-z]{2,5}( [a-z]{2,5}){1,2}\\n</think>\\n\\nxy[a-z]{2,5}";

	JsonNode post(String path, Map<String, Object> body) throws Exception {
		RawHttp.Response r = RawHttp.request(port, "POST", path, null, Api.JSON.writeValueAsString(body));
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		return Api.JSON.readTree(r.body());
	}

	Map<String, Object> thinkingChat(boolean stream) {
		var body = new java.util.LinkedHashMap<String, Object>();
		body.put("messages", java.util.List.of(Map.of("role", "user", "content", "What is 2+2?")));
		body.put("max_tokens", 60);
		body.put("temperature", 0);
		body.put("guided_regex", THINKING);
		body.put("stream", stream);
		return body;
	}

	/** The same answer's raw text, from /v1/completions on the chat's rendered prompt (greedy, same regex). */
	String rawAnswer() throws Exception {
		String prompt = rendered(null);
		JsonNode c = post("/v1/completions", Map.of("prompt", prompt, "max_tokens", 60, "temperature", 0, "guided_regex",
				THINKING));
		return c.path("choices").get(0).path("text").asString();
	}

	@Test
	void aThinkBlockGoesToReasoningContentAndTheRestToContent() throws Exception {
		String raw = rawAnswer();
		assertThat(raw).startsWith("<think>\nab").contains("\n</think>\n\nxy");
		JsonNode message = post("/v1/chat/completions", thinkingChat(false)).path("choices").get(0).path("message");
		String reasoning = message.path("reasoning_content").asString();
		String content = message.path("content").asString();
		assertThat(reasoning).startsWith("ab").doesNotContain("<think>").doesNotContain("\n");
		assertThat(content).startsWith("xy");
		assertThat("<think>\n" + reasoning + "\n</think>\n\n" + content).isEqualTo(raw);

		// vLLM's include_reasoning: false keeps the answer alone
		Map<String, Object> without = thinkingChat(false);
		without.put("include_reasoning", false);
		JsonNode bare = post("/v1/chat/completions", without).path("choices").get(0).path("message");
		assertThat(bare.has("reasoning_content")).as(bare.toString()).isFalse();
		assertThat(bare.path("content").asString()).isEqualTo(content);
	}

	@Test
	void aStreamSendsTheReasoningAsReasoningContentDeltas() throws Exception {
		JsonNode whole = post("/v1/chat/completions", thinkingChat(false)).path("choices").get(0).path("message");
		var http = java.net.http.HttpClient.newHttpClient();
		String sse = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
			.header("Content-Type", "application/json")
			.POST(java.net.http.HttpRequest.BodyPublishers.ofString(Api.JSON.writeValueAsString(thinkingChat(true))))
			.build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
		StringBuilder reasoning = new StringBuilder();
		StringBuilder content = new StringBuilder();
		int reasoningChunks = 0;
		boolean contentBeforeReasoningEnded = false;
		for (String line : sse.split("\n")) {
			if (!line.startsWith("data: {")) {
				continue;
			}
			JsonNode delta = Api.JSON.readTree(line.substring(6)).path("choices").get(0).path("delta");
			if (delta.has("reasoning_content")) {
				reasoningChunks++;
				reasoning.append(delta.get("reasoning_content").asString());
				assertThat(delta.has("content")).as("a chunk carries reasoning or content, not both").isFalse();
				contentBeforeReasoningEnded |= !content.isEmpty();
			}
			if (delta.hasNonNull("content")) {
				content.append(delta.get("content").asString());
			}
		}
		assertThat(reasoningChunks).as(sse).isGreaterThan(1);
		assertThat(contentBeforeReasoningEnded).isFalse();
		assertThat(reasoning.toString()).isEqualTo(whole.path("reasoning_content").asString());
		assertThat(content.toString()).isEqualTo(whole.path("content").asString());
	}

	/** The Responses API puts the think block in a reasoning item before the message, whole and streamed. */
	@Test
	void theResponsesApiGivesTheReasoningItsOwnItem() throws Exception {
		JsonNode chat = post("/v1/chat/completions", thinkingChat(false)).path("choices").get(0).path("message");
		Map<String, Object> body = new java.util.LinkedHashMap<>(Map.of("input", "What is 2+2?", "max_output_tokens", 60,
				"temperature", 0, "guided_regex", THINKING));
		JsonNode output = post("/v1/responses", body).path("output");
		assertThat(output.path(0).path("type").asString()).isEqualTo("reasoning");
		assertThat(output.path(0).path("content").path(0).path("text").asString())
			.isEqualTo(chat.path("reasoning_content").asString()).isNotEmpty();
		assertThat(output.path(1).path("type").asString()).isEqualTo("message");
		assertThat(output.path(1).path("content").path(0).path("text").asString()).isEqualTo(chat.path("content").asString());

		body.put("stream", true);
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/responses", null, Api.JSON.writeValueAsString(body));
		StringBuilder reasoning = new StringBuilder();
		StringBuilder text = new StringBuilder();
		java.util.List<String> added = new java.util.ArrayList<>();
		for (String line : r.body().split("\n")) {
			if (!line.startsWith("data: ")) {
				continue;
			}
			JsonNode e = Api.JSON.readTree(line.substring(6));
			switch (e.path("type").asString()) {
				case "response.reasoning_text.delta" -> reasoning.append(e.path("delta").asString());
				case "response.output_text.delta" -> text.append(e.path("delta").asString());
				case "response.output_item.added" -> added.add(e.path("item").path("type").asString());
				default -> {
				}
			}
		}
		assertThat(added).containsExactly("reasoning", "message");
		assertThat(reasoning.toString()).isEqualTo(chat.path("reasoning_content").asString());
		assertThat(text.toString()).isEqualTo(chat.path("content").asString());
	}

	@Test
	void anAssistantPrefixThatOpensABlockIsContinuedAsReasoning() throws Exception {
		// continue_final_message with a prefix still inside its block: what follows is reasoning until
		// </think>, which a random model does not write in 8 tokens, so the answer has no content
		var messages = java.util.List.of(Map.of("role", "user", "content", "What is 2+2?"),
				Map.of("role", "assistant", "content", "<think>\nFirst, "));
		JsonNode message = post("/v1/chat/completions", Map.of("messages", messages, "max_tokens", 8, "temperature", 0,
				"add_generation_prompt", false, "continue_final_message", true)).path("choices").get(0).path("message");
		JsonNode rendered = post("/tokenize", Map.of("messages", messages, "add_generation_prompt", false,
				"continue_final_message", true));
		String prompt = post("/detokenize", Map.of("tokens", rendered.path("tokens"))).path("prompt").asString();
		assertThat(prompt).endsWith("<think>\nFirst, ");
		String raw = post("/v1/completions", Map.of("prompt", prompt, "max_tokens", 8, "temperature", 0)).path("choices")
			.get(0)
			.path("text")
			.asString();
		assertThat(raw).doesNotContain("</think>");
		assertThat(message.path("content").asString()).isEmpty();
		assertThat(message.path("reasoning_content").asString()).isEqualTo(raw.replaceAll("^\n+|\n+$", ""));
	}

	/** LangChain4j with returnThinking reads reasoning_content as the message's thinking. */
	@Test
	void langChain4jReadsTheReasoningAsTheMessagesThinking() throws Exception {
		JsonNode whole = post("/v1/chat/completions", thinkingChat(false)).path("choices").get(0).path("message");
		var chat = dev.langchain4j.model.openai.OpenAiChatModel.builder()
			.baseUrl("http://127.0.0.1:" + port + "/v1")
			.apiKey("unused")
			.modelName("qwen3-template")
			.maxTokens(60)
			.temperature(0.0)
			.returnThinking(true)
			.customParameters(Map.of("guided_regex", THINKING))
			.build();
		var answer = chat.chat(java.util.List.of(dev.langchain4j.data.message.UserMessage.from("What is 2+2?"))).aiMessage();
		assertThat(answer.thinking()).isEqualTo(whole.path("reasoning_content").asString()).isNotBlank();
		assertThat(answer.text()).isEqualTo(whole.path("content").asString());
	}

	/** vLLM's continuous_usage_stats on chat: every chunk carries the usage so far. */
	@Test
	void chatStreamChunksCarryTheUsageSoFar() throws Exception {
		Map<String, Object> body = thinkingChat(true);
		body.put("stream_options", Map.of("include_usage", true, "continuous_usage_stats", true));
		var http = java.net.http.HttpClient.newHttpClient();
		String sse = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
			.header("Content-Type", "application/json")
			.POST(java.net.http.HttpRequest.BodyPublishers.ofString(Api.JSON.writeValueAsString(body)))
			.build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
		int previous = 0, chunks = 0;
		JsonNode last = null;
		for (String line : sse.split("\n")) {
			if (!line.startsWith("data: {")) {
				continue;
			}
			last = Api.JSON.readTree(line.substring(6));
			if (last.path("choices").isEmpty() || last.path("choices").get(0).path("delta").has("role")) {
				continue; // the role chunk comes before any token; the usage-only chunk at the end
			}
			int completion = last.path("usage").path("completion_tokens").asInt(-1);
			assertThat(completion).as(line).isGreaterThanOrEqualTo(Math.max(previous, 1));
			previous = completion;
			chunks++;
		}
		assertThat(chunks).isGreaterThan(3);
		assertThat(last.path("usage").path("completion_tokens").asInt()).isEqualTo(previous);
	}
}
