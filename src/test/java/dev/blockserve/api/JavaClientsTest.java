package dev.blockserve.api;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.stream.Collectors;

import dev.blockserve.BlockserveApplication;
import dev.langchain4j.model.chat.response.ChatResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The Java clients users reach the server with, as the README shows them: Spring AI 2's OpenAI chat
 * model and LangChain4j's, pointed at {@code http://HOST:PORT/v1}. Greedy answers from the clients
 * (called and streamed) equal the server's own answer to the same request, read as raw JSON.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class JavaClientsTest {

	static final String QUESTION = "What is a paged KV cache?";

	static final int MAX_TOKENS = 12;

	@LocalServerPort
	int port;

	String baseUrl() {
		return "http://127.0.0.1:" + port + "/v1";
	}

	/** The server's greedy answer to QUESTION, over plain HTTP. */
	String serverAnswer() throws Exception {
		String body = "{\"model\": \"tiny-random-llama\", \"messages\": [{\"role\": \"user\", \"content\": \"" + QUESTION
				+ "\"}], \"max_tokens\": " + MAX_TOKENS + ", \"temperature\": 0}";
		HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(baseUrl() + "/chat/completions"))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
				HttpResponse.BodyHandlers.ofString());
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		JsonNode json = JsonMapper.builder().build().readTree(r.body());
		String content = json.path("choices").get(0).path("message").path("content").asString();
		assertThat(content).as("the answer the clients must reproduce").isNotBlank();
		return content;
	}

	@Test
	void springAiChatModel() throws Exception {
		// README: Spring AI
		OpenAiChatModel chat = OpenAiChatModel.builder()
			.options(OpenAiChatOptions.builder()
				.baseUrl(baseUrl()) // http://HOST:8000/v1
				.apiKey("unused") // or the server's blockserve.api.api-keys value
				.model("tiny-random-llama")
				.maxTokens(MAX_TOKENS)
				.temperature(0.0)
				.build())
			.build();
		String expected = serverAnswer();
		var response = chat.call(new Prompt(new UserMessage(QUESTION)));
		assertThat(response.getResult().getOutput().getText()).isEqualTo(expected);
		String streamed = chat.stream(new Prompt(new UserMessage(QUESTION)))
			.map(c -> c.getResult() == null || c.getResult().getOutput().getText() == null ? ""
					: c.getResult().getOutput().getText())
			.collect(Collectors.joining())
			.block();
		assertThat(streamed).isEqualTo(expected);
	}

	@Test
	void langChain4jChatModel() throws Exception {
		// README: LangChain4j
		var chat = dev.langchain4j.model.openai.OpenAiChatModel.builder()
			.baseUrl(baseUrl()) // http://HOST:8000/v1
			.apiKey("unused")
			.modelName("tiny-random-llama")
			.maxTokens(MAX_TOKENS)
			.temperature(0.0)
			.build();
		String expected = serverAnswer();
		ChatResponse response = chat.chat(List.of(dev.langchain4j.data.message.UserMessage.from(QUESTION)));
		assertThat(response.aiMessage().text()).isEqualTo(expected);
		assertThat(chat.chat(QUESTION)).isEqualTo(expected);
	}

	JsonNode post(String path, String body) throws Exception {
		HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
				HttpResponse.BodyHandlers.ofString());
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		return JsonMapper.builder().build().readTree(r.body());
	}

	/**
	 * logit_bias as both clients send it (a map of token id strings to integers): +100 on one token makes
	 * every token of the answer that one. The server used to ignore the field, so the clients got the unbiased
	 * answer.
	 */
	@Test
	void logitBiasFromBothClients() throws Exception {
		JsonNode ids = post("/tokenize", "{\"prompt\": \" cache\", \"add_special_tokens\": false}").path("tokens");
		int forced = ids.get(ids.size() - 1).asInt();
		String expected = post("/detokenize", "{\"tokens\": " + java.util.Collections.nCopies(MAX_TOKENS, forced) + "}")
			.path("prompt").asString();
		assertThat(expected).as("the forced answer differs from the free one").isNotEqualTo(serverAnswer());
		java.util.Map<String, Integer> bias = java.util.Map.of(String.valueOf(forced), 100);

		OpenAiChatModel spring = OpenAiChatModel.builder()
			.options(OpenAiChatOptions.builder().baseUrl(baseUrl()).apiKey("unused").model("tiny-random-llama")
				.maxTokens(MAX_TOKENS).temperature(0.0).logitBias(bias).build())
			.build();
		assertThat(spring.call(new Prompt(new UserMessage(QUESTION))).getResult().getOutput().getText()).isEqualTo(expected);

		var lc4j = dev.langchain4j.model.openai.OpenAiChatModel.builder().baseUrl(baseUrl()).apiKey("unused")
			.modelName("tiny-random-llama").maxTokens(MAX_TOKENS).temperature(0.0).logitBias(bias).build();
		assertThat(lc4j.chat(QUESTION)).isEqualTo(expected);
	}
}
