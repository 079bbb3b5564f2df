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
 * enable_thinking=false renders Qwen3's empty think block.
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
		try {
			Path src = SharedModels.dir("tiny-random-qwen3");
			Path dir = Path.of("target", "test-models", "qwen3-template").toAbsolutePath();
			Files.createDirectories(dir);
			for (String f : new String[] { "config.json", "model.safetensors", "tokenizer.json", "generation_config.json" }) {
				Files.deleteIfExists(dir.resolve(f));
				Files.createSymbolicLink(dir.resolve(f), src.resolve(f).toAbsolutePath());
			}
			ObjectNode tc = (ObjectNode) Api.JSON.readTree(src.resolve("tokenizer_config.json").toFile());
			tc.put("chat_template", Files.readString(Path.of("src", "test", "resources", "chat-templates", "qwen3.jinja")));
			Files.writeString(dir.resolve("tokenizer_config.json"), Api.JSON.writeValueAsString(tc));
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
}
