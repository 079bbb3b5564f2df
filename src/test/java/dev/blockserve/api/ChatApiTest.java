package dev.blockserve.api;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.CompletionCreateParams;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Chat completions through the OpenAI SDK on tiny-random-llama, whose tokenizer_config is given
 * Mistral's chat template (a copy made under target/), with API keys on.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.api.api-keys=sk-test-1,sk-test-2", "blockserve.served-model-name=tiny-mistral",
				"blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChatApiTest extends OpenAiServerTest {

	@Override
	String apiKey() {
		return "sk-test-2";
	}

	static final String MISTRAL = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
			+ "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
			+ "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
			+ "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}"
			+ "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

	@DynamicPropertySource
	static void model(DynamicPropertyRegistry registry) throws Exception {
		if (!SharedModels.present()) {
			return;
		}
		Path src = SharedModels.dir("tiny-random-llama");
		Path dst = Path.of("target", "test-models", "tiny-mistral-template");
		Files.createDirectories(dst);
		for (String f : List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json")) {
			Files.copy(src.resolve(f), dst.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
		}
		JsonMapper json = JsonMapper.builder().build();
		ObjectNode cfg = (ObjectNode) json.readTree(src.resolve("tokenizer_config.json").toFile());
		cfg.put("chat_template", MISTRAL);
		cfg.put("bos_token", "<|endoftext|>");
		Files.writeString(dst.resolve("tokenizer_config.json"), json.writeValueAsString(cfg));
		registry.add("blockserve.model", dst::toString);
	}

	ChatCompletionCreateParams.Builder chat() {
		return ChatCompletionCreateParams.builder().model("tiny-mistral").addUserMessage("Hello there")
			.maxCompletionTokens(12).temperature(0.0);
	}

	@Test
	void chatEqualsACompletionOfTheRenderedTemplate() {
		ChatCompletion c = client.chat().completions().create(chat().build());
		String content = c.choices().get(0).message().content().orElseThrow();
		// the same prompt through /v1/completions as token ids: [INST] rendering, tokenised without specials
		List<Long> ids = List.of();
		try (var tok = dev.blockserve.model.TextTokenizer.load(Path.of("target/test-models/tiny-mistral-template"))) {
			ids = java.util.Arrays.stream(tok.encode("<|endoftext|>[INST] Hello there [/INST]", false)).mapToObj(i -> (long) i)
				.collect(Collectors.toList());
		}
		String viaCompletions = client.completions().create(CompletionCreateParams.builder().model("tiny-mistral")
			.promptOfArrayOfTokens(ids).maxTokens(12).temperature(0.0).build()).choices().get(0).text();
		assertThat(content).isEqualTo(viaCompletions);
		assertThat(c.usage().orElseThrow().promptTokens()).isEqualTo(ids.size());
		assertThat(c.choices().get(0).message()._role().toString()).contains("assistant");
		assertThat(c.id()).startsWith("chatcmpl-");
	}

	/**
	 * vLLM's continue_final_message: the model continues the assistant's prefix, as a completion of the
	 * rendered conversation cut after that prefix (the template's closing EOS dropped) would.
	 */
	@Test
	void continueFinalMessageContinuesTheAssistantsPrefix() throws Exception {
		ChatCompletion c = client.chat().completions().create(chat().addAssistantMessage("Once upon a")
			.putAdditionalBodyProperty("continue_final_message", com.openai.core.JsonValue.from(true))
			.putAdditionalBodyProperty("add_generation_prompt", com.openai.core.JsonValue.from(false)).build());
		List<Long> ids;
		try (var tok = dev.blockserve.model.TextTokenizer.load(Path.of("target/test-models/tiny-mistral-template"))) {
			ids = java.util.Arrays.stream(tok.encode("<|endoftext|>[INST] Hello there [/INST]Once upon a", false))
				.mapToObj(i -> (long) i).collect(Collectors.toList());
		}
		String viaCompletions = client.completions().create(CompletionCreateParams.builder().model("tiny-mistral")
			.promptOfArrayOfTokens(ids).maxTokens(12).temperature(0.0).build()).choices().get(0).text();
		assertThat(c.choices().get(0).message().content().orElseThrow()).isEqualTo(viaCompletions);
		assertThat(c.usage().orElseThrow().promptTokens()).isEqualTo(ids.size());
		// /tokenize renders the same way
		HttpResponse<String> t = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
				+ "/tokenize")).header("Authorization", "Bearer sk-test-1").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"messages\": [{\"role\": \"user\", \"content\": \"Hello there\"}, "
					+ "{\"role\": \"assistant\", \"content\": \"Once upon a\"}], \"continue_final_message\": true, "
					+ "\"add_generation_prompt\": false}"))
			.build(), HttpResponse.BodyHandlers.ofString());
		assertThat(Api.JSON.readTree(t.body()).path("count").asInt()).isEqualTo(ids.size());
		// both switches on is a contradiction, refused as vLLM refuses it
		assertThatThrownBy(() -> client.chat().completions().create(chat().addAssistantMessage("Once upon a")
			.putAdditionalBodyProperty("continue_final_message", com.openai.core.JsonValue.from(true)).build()))
			.isInstanceOfSatisfying(BadRequestException.class, e -> assertThat(e.getMessage())
				.contains("'continue_final_message' and 'add_generation_prompt' cannot both be true"));
	}

	/** truncate_prompt_tokens on chat keeps the rendered prompt's last k tokens. */
	@Test
	void truncatePromptTokensCutsTheRenderedPrompt() {
		ChatCompletion c = client.chat().completions().create(chat()
			.putAdditionalBodyProperty("truncate_prompt_tokens", com.openai.core.JsonValue.from(4)).build());
		assertThat(c.usage().orElseThrow().promptTokens()).isEqualTo(4);
	}

	@Test
	void streamingStartsWithTheRoleAndEndsWithUsage() {
		String whole = client.chat().completions().create(chat().build()).choices().get(0).message().content().orElseThrow();
		List<ChatCompletionChunk> chunks;
		try (StreamResponse<ChatCompletionChunk> s = client.chat().completions()
			.createStreaming(chat().streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build())) {
			chunks = s.stream().collect(Collectors.toList());
		}
		assertThat(chunks.get(0).choices().get(0).delta().role().orElseThrow().asString()).isEqualTo("assistant");
		String text = chunks.stream().flatMap(ch -> ch.choices().stream())
			.map(ch -> ch.delta().content().orElse("")).collect(Collectors.joining());
		assertThat(text).isEqualTo(whole);
		ChatCompletionChunk last = chunks.get(chunks.size() - 1);
		assertThat(last.choices()).isEmpty();
		assertThat(last.usage().orElseThrow().completionTokens()).isEqualTo(12);
		assertThat(chunks.get(chunks.size() - 2).choices().get(0).finishReason()).isPresent();
	}

	@Test
	void n2LogprobsAndSeed() {
		ChatCompletion c = client.chat().completions().create(chat().n(2).temperature(1.0).seed(3).logprobs(true)
			.topLogprobs(2).build());
		assertThat(c.choices()).hasSize(2);
		var lp = c.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
		assertThat(lp).hasSize(12).allSatisfy(t -> assertThat(t.topLogprobs()).hasSize(2));
		// Per-token texts add up to the content (a random model emits stray UTF-8 bytes, shown as U+FFFD)
		assertThat(lp.stream().map(t -> t.token()).collect(Collectors.joining()).replace("\uFFFD", ""))
			.isEqualTo(c.choices().get(0).message().content().orElseThrow().replace("\uFFFD", ""));
		ChatCompletion again = client.chat().completions().create(chat().n(2).temperature(1.0).seed(3).build());
		assertThat(again.choices().get(1).message().content()).isEqualTo(c.choices().get(1).message().content());
	}

	/**
	 * vLLM's return_tokens_as_token_ids: every logprob entry (chosen and alternatives, streamed or not) names its
	 * token "token_id:ID"; the ids decode to the content, and the logprobs are those of the same seeded run.
	 */
	@Test
	void returnTokensAsTokenIds() throws Exception {
		ChatCompletion texts = client.chat().completions().create(chat().temperature(1.0).seed(5).logprobs(true).topLogprobs(2)
			.build());
		ChatCompletion ids = client.chat().completions().create(chat().temperature(1.0).seed(5).logprobs(true).topLogprobs(2)
			.putAdditionalBodyProperty("return_tokens_as_token_ids", com.openai.core.JsonValue.from(true)).build());
		var byText = texts.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
		var byId = ids.choices().get(0).logprobs().orElseThrow().content().orElseThrow();
		assertThat(byId).hasSameSizeAs(byText);
		List<Integer> tokenIds = new java.util.ArrayList<>();
		for (int k = 0; k < byId.size(); k++) {
			assertThat(byId.get(k).token()).matches("token_id:[0-9]+");
			assertThat(byId.get(k).logprob()).isEqualTo(byText.get(k).logprob());
			assertThat(byId.get(k).topLogprobs()).hasSize(2).allSatisfy(t -> assertThat(t.token()).matches("token_id:[0-9]+"));
			tokenIds.add(Integer.parseInt(byId.get(k).token().substring("token_id:".length())));
		}
		HttpResponse<String> decoded = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
				+ port + "/detokenize")).header("Content-Type", "application/json").header("Authorization", "Bearer sk-test-2")
			.POST(HttpRequest.BodyPublishers.ofString(Api.JSON.writeValueAsString(java.util.Map.of("tokens", tokenIds)))).build(),
				HttpResponse.BodyHandlers.ofString());
		assertThat(Api.JSON.readTree(decoded.body()).path("prompt").asString())
			.isEqualTo(ids.choices().get(0).message().content().orElseThrow());
		try (var stream = client.chat().completions().createStreaming(chat().temperature(1.0).seed(5).logprobs(true)
			.putAdditionalBodyProperty("return_tokens_as_token_ids", com.openai.core.JsonValue.from(true)).build())) {
			List<String> streamed = stream.stream()
				.flatMap(ch -> ch.choices().stream())
				.flatMap(x -> x.logprobs().flatMap(l -> l.content()).orElse(List.of()).stream())
				.map(t -> t.token()).toList();
			assertThat(streamed).isEqualTo(byId.stream().map(t -> t.token()).toList());
		}
	}

	@Test
	void raiseExceptionIsA400WithTheTemplatesMessage() {
		assertThatThrownBy(() -> client.chat().completions().create(ChatCompletionCreateParams.builder()
			.model("tiny-mistral").addSystemMessage("be brief").addUserMessage("hi").build()))
			.isInstanceOfSatisfying(BadRequestException.class,
					e -> assertThat(e.getMessage()).contains("Conversation roles must alternate"));
	}

	/** vLLM's prompt_logprobs on chat: at the top of the response, one entry per token of the rendered prompt. */
	@Test
	void promptLogprobsOfTheRenderedPrompt() throws Exception {
		String messages = "[{\"role\": \"user\", \"content\": \"What is a block table?\"}]";
		HttpResponse<String> t = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
				+ "/tokenize")).header("Authorization", "Bearer sk-test-1").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"messages\": " + messages + "}")).build(), HttpResponse.BodyHandlers.ofString());
		int count = Api.JSON.readTree(t.body()).path("count").asInt();
		HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
				+ "/v1/chat/completions")).header("Authorization", "Bearer sk-test-1").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"messages\": " + messages + ", \"max_tokens\": 3, \"prompt_logprobs\": 0}"))
			.build(), HttpResponse.BodyHandlers.ofString());
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		var plp = Api.JSON.readTree(r.body()).path("prompt_logprobs");
		assertThat(plp.size()).isEqualTo(count);
		assertThat(plp.get(0).isNull()).isTrue();
		for (int j = 1; j < count; j++) {
			assertThat(plp.get(j).size()).as("the prompt token, and the top one when it differs").isBetween(1, 2);
			assertThat(plp.get(j).properties().iterator().next().getValue().path("logprob").asDouble()).isLessThanOrEqualTo(0.0);
		}
	}

	@Test
	void messageContentIsDataNotTemplateCode() throws Exception {
		HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
				+ "/tokenize")).header("Authorization", "Bearer sk-test-1").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString(
					"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"{{ 7*7 }}\"}]}]}"))
			.build(), HttpResponse.BodyHandlers.ofString());
		assertThat(r.statusCode()).isEqualTo(200);
		String tokens = r.body().replaceAll(".*\"tokens\":(\\[[^]]*\\]).*", "$1");
		HttpResponse<String> d = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
				+ "/detokenize")).header("Authorization", "Bearer sk-test-1").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"tokens\": " + tokens + "}")).build(), HttpResponse.BodyHandlers.ofString());
		assertThat(d.body()).contains("[INST] {{ 7*7 }} [/INST]").doesNotContain("49");
	}

	@Test
	void apiKeysAreRequired() {
		OpenAIClient wrong = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + port + "/v1").apiKey("sk-nope")
			.maxRetries(0).build();
		try {
			assertThatThrownBy(() -> wrong.chat().completions().create(chat().build()))
				.isInstanceOfSatisfying(UnauthorizedException.class, e -> {
					assertThat(e.statusCode()).isEqualTo(401);
					assertThat(e.code()).contains("invalid_api_key");
				});
		}
		finally {
			wrong.close();
		}
	}
}
