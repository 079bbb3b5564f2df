package dev.blockserve.api;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Structured output from a reasoning model, as vLLM serves it behind a reasoning parser: the model may
 * write its {@code <think>} block first, and the schema holds from the token after {@code </think>}. The
 * shared random Qwen3 gets Qwen3's chat template and, as the real Qwen3 vocabulary has them, {@code <think>}
 * and {@code </think>} as single tokens (ids 285 and 286, in place of two merges); logit biases steer the
 * random model through the block.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ReasoningStructuredOutputTest {

	static final int THINK = 285;

	static final int END_THINK = 286;

	static final Map<String, Object> SCHEMA = Map.of("type", "json_schema", "json_schema", Map.of("name", "n", "strict", true,
			"schema", Map.of("type", "object", "properties", Map.of("n", Map.of("type", "integer")), "required", List.of("n"),
					"additionalProperties", false)));

	@LocalServerPort
	int port;

	@DynamicPropertySource
	static void model(DynamicPropertyRegistry r) {
		r.add("blockserve.model", () -> qwen3WithThinkTokens().toString());
	}

	/** tiny-random-qwen3 with Qwen3's template and <think>, </think> as added tokens 285, 286. */
	static Path qwen3WithThinkTokens() {
		return Qwen3ServingTest.qwen3Variant("qwen3-think-tokens", t -> {
			ObjectNode vocab = (ObjectNode) t.path("model").path("vocab");
			assertThat(vocab.path("en").asInt()).isEqualTo(THINK);
			assertThat(vocab.path("Ġd").asInt()).isEqualTo(END_THINK);
			// the ids keep their place in the model's vocabulary (HF tokenizers numbers added tokens after it
			// unless their text is in it), under the tags' text; the merges that made them are gone
			vocab.remove("en");
			vocab.remove("Ġd");
			vocab.put("<think>", THINK);
			vocab.put("</think>", END_THINK);
			ArrayNode merges = (ArrayNode) t.path("model").path("merges");
			for (int i = merges.size() - 1; i >= 0; i--) {
				String m = merges.get(i).asString();
				if (m.equals("e n") || m.equals("Ġ d")) {
					merges.remove(i);
				}
			}
			ArrayNode added = (ArrayNode) t.path("added_tokens");
			for (Object[] a : new Object[][] { { THINK, "<think>" }, { END_THINK, "</think>" } }) {
				added.addObject().put("id", (int) a[0]).put("content", (String) a[1]).put("single_word", false).put("lstrip", false)
					.put("rstrip", false).put("normalized", false).put("special", false);
			}
		});
	}

	JsonNode chat(Map<String, Object> extra) throws Exception {
		var body = new java.util.LinkedHashMap<String, Object>();
		body.put("messages", List.of(Map.of("role", "user", "content", "Pick a number.")));
		body.put("max_tokens", 120); // room for the schema's bounded blanks and digits, token by byte here
		body.put("temperature", 0);
		body.put("response_format", SCHEMA);
		body.put("logprobs", true);
		body.putAll(extra);
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/chat/completions", null, Api.JSON.writeValueAsString(body));
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		return Api.JSON.readTree(r.body()).path("choices").get(0);
	}

	static List<String> tokens(JsonNode choice) {
		return choice.path("logprobs").path("content").valueStream().map(t -> t.path("token").asString()).toList();
	}

	static void validAnswer(JsonNode choice) {
		assertThat(choice.path("finish_reason").asString()).isEqualTo("stop");
		JsonNode answer = Api.JSON.readTree(choice.path("message").path("content").asString());
		assertThat(answer.path("n").isIntegralNumber()).as(answer.toString()).isTrue();
		assertThat(answer.size()).isEqualTo(1);
	}

	@Test
	void theTokenizerHasTheTagsAsSingleTokens() throws Exception {
		RawHttp.Response r = RawHttp.request(port, "POST", "/tokenize", null, "{\"prompt\": \"<think>x</think>\"}");
		assertThat(Api.JSON.readTree(r.body()).path("tokens").get(0).asInt()).isEqualTo(THINK);
		assertThat(Api.JSON.readTree(r.body()).path("tokens").get(2).asInt()).isEqualTo(END_THINK);
	}

	@Test
	void theModelMayOpenABlockAndTheSchemaHoldsAfterIt() throws Exception {
		// first token: the schema's or <think> (+50, wins); in the block </think> (+100) closes it; then the
		// schema holds (its mask removes both tags, whatever their bias)
		JsonNode choice = chat(Map.of("logit_bias", Map.of(String.valueOf(THINK), 50, String.valueOf(END_THINK), 100)));
		assertThat(tokens(choice).subList(0, 2)).containsExactly("<think>", "</think>");
		assertThat(choice.path("message").has("reasoning_content")).as("an empty block").isFalse();
		validAnswer(choice);
	}

	@Test
	void withoutReasoningTheSchemaHoldsFromTheFirstToken() throws Exception {
		// </think> alone is neither the schema's nor the opening: masked however strong its bias
		JsonNode choice = chat(Map.of("logit_bias", Map.of(String.valueOf(END_THINK), 100)));
		assertThat(tokens(choice).get(0)).isNotIn("<think>", "</think>");
		validAnswer(choice);
		// and after a prompt that closed the block (enable_thinking false: the template wrote an empty one)
		// the answer may not open one, however strong the bias
		JsonNode off = chat(Map.of("chat_template_kwargs", Map.of("enable_thinking", false), "logit_bias",
				Map.of(String.valueOf(THINK), 100)));
		assertThat(tokens(off).get(0)).isNotIn("<think>", "</think>");
		validAnswer(off);
		// while with thinking on the same bias opens it
		JsonNode on = chat(Map.of("logit_bias", Map.of(String.valueOf(THINK), 100), "max_tokens", 8));
		assertThat(tokens(on).get(0)).isEqualTo("<think>");
	}

	@Test
	void aPromptThatOpensTheBlockReasonsUntilItsEnd() throws Exception {
		// continue_final_message with an assistant prefix inside its block: free text (EOS masked) until
		// </think>, which the bias makes the first token
		var messages = List.of(Map.of("role", "user", "content", "Pick a number."),
				Map.of("role", "assistant", "content", "<think>\nLet me see"));
		JsonNode choice = chat(Map.of("messages", messages, "add_generation_prompt", false, "continue_final_message", true,
				"logit_bias", Map.of(String.valueOf(END_THINK), 100)));
		assertThat(tokens(choice).get(0)).isEqualTo("</think>");
		validAnswer(choice);
		// a block cut by max_tokens: all reasoning, no answer, "length"
		JsonNode cut = chat(Map.of("messages", messages, "add_generation_prompt", false, "continue_final_message", true,
				"max_tokens", 6));
		assertThat(cut.path("finish_reason").asString()).isEqualTo("length");
		assertThat(cut.path("message").path("content").asString()).isEmpty();
		assertThat(cut.path("message").path("reasoning_content").asString()).isNotEmpty();
	}
}
