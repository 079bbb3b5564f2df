package dev.blockserve.chat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The renderer against real chat templates (SmolLM2, Llama 3, Qwen 2.5, Mistral) and renderings made by
 * Python's jinja2 the way Hugging Face's apply_chat_template renders (see render_expected.py beside them).
 */
class ChatTemplateTest {

	static final Path DIR = Path.of("src", "test", "resources", "chat-templates");

	static final JsonMapper JSON = JsonMapper.builder().build();

	static final Map<String, String[]> TOKENS = Map.of("smollm2", new String[] { "", "<|im_end|>" }, "llama3",
			new String[] { "<|begin_of_text|>", "<|eot_id|>" }, "mistral", new String[] { "<s>", "</s>" }, "qwen2.5",
			new String[] { "", "<|im_end|>" }, "qwen3", new String[] { "", "<|im_end|>" });

	static Stream<Arguments> cases() throws IOException {
		JsonNode cases = JSON.readTree(DIR.resolve("cases.json").toFile());
		List<Arguments> out = new ArrayList<>();
		for (String t : List.of("smollm2", "llama3", "mistral", "qwen2.5", "qwen3")) {
			for (JsonNode c : cases) {
				boolean applies = !c.has("only");
				for (JsonNode o : c.path("only")) {
					applies |= o.asString().equals(t);
				}
				if (applies) {
					out.add(Arguments.of(t, c.path("name").asString(), c));
				}
			}
		}
		return out.stream();
	}

	@SuppressWarnings("unchecked")
	@ParameterizedTest(name = "{0} / {1}")
	@MethodSource("cases")
	void rendersLikeJinja2(String template, String caseName, JsonNode c) throws IOException {
		ChatTemplate ct = new ChatTemplate(Files.readString(DIR.resolve(template + ".jinja")), TOKENS.get(template)[0],
				TOKENS.get(template)[1]);
		List<Map<String, Object>> messages = JSON.convertValue(c.get("messages"), List.class);
		List<Object> tools = c.has("tools") ? JSON.convertValue(c.get("tools"), List.class) : null;
		String expected = Files.readString(DIR.resolve("expected").resolve(template + "." + caseName + ".txt"));
		// a case's kwargs are what a client sends as chat_template_kwargs (Qwen3's enable_thinking)
		Map<String, Object> kwargs = c.has("kwargs") ? JSON.convertValue(c.get("kwargs"), Map.class) : null;
		if (expected.startsWith("ERROR: ")) {
			assertThatThrownBy(() -> ct.render(messages, tools, c.path("add_generation_prompt").asBoolean(), kwargs))
				.isInstanceOf(ChatTemplate.TemplateException.class)
				.hasMessage(expected.substring("ERROR: ".length()));
		}
		else {
			assertThat(ct.render(messages, tools, c.path("add_generation_prompt").asBoolean(), kwargs)).isEqualTo(expected);
		}
	}

	/** continue_final_message's cut, as transformers makes it: after the final message, its own spacing kept or trimmed as the template left it. */
	@Test
	void openFinalMessageCutsAfterTheFinalMessage() {
		String chatml = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";
		ChatTemplate ct = new ChatTemplate(chatml, "", "");
		List<Map<String, Object>> msgs = List.of(Map.of("role", "user", "content", "The answer is"),
				Map.of("role", "assistant", "content", "The answer is "));
		String rendered = ct.render(msgs, null, false, null);
		// the last occurrence is the assistant's, and its trailing space survives the template
		assertThat(ChatTemplate.openFinalMessage(rendered, "The answer is "))
			.isEqualTo("<|im_start|>user\nThe answer is<|im_end|>\n<|im_start|>assistant\nThe answer is ");
		// a template that trims: the cut follows the trimmed text
		ChatTemplate trims = new ChatTemplate(chatml.replace("{{ m['content'] }}", "{{ m['content'] | trim }}"), "", "");
		assertThat(ChatTemplate.openFinalMessage(trims.render(msgs, null, false, null), "The answer is "))
			.endsWith("<|im_start|>assistant\nThe answer is");
		// a template that changes the message cannot be continued
		ChatTemplate upper = new ChatTemplate(chatml.replace("{{ m['content'] }}", "{{ m['content'] | upper }}"), "", "");
		assertThatThrownBy(() -> ChatTemplate.openFinalMessage(upper.render(msgs, null, false, null), "The answer is "))
			.isInstanceOf(ChatTemplate.TemplateException.class)
			.hasMessageContaining("the final message does not appear");
	}

	@Test
	void messageContentIsNeverEvaluated() {
		ChatTemplate ct = new ChatTemplate("{% for m in messages %}{{ m['content'] }}{% endfor %}", "", "");
		String out = ct.render(List.of(Map.of("role", "user", "content", "{{ 7*7 }}{% raw %}")), null, false, null);
		assertThat(out).isEqualTo("{{ 7*7 }}{% raw %}");
	}

	@Test
	void pythonStringMethodsAndReverseSlice() {
		ChatTemplate ct = new ChatTemplate(
				"{{ s.startswith('a') }} {{ s.endswith(('x','c')) }} {{ s.upper() }} {{ t.title() }} {{ t.split()|length }}"
						+ " {{ '-'.join(t.split(' ')) }} [{{ p.strip() }}] [{{ p.lstrip() }}] {{ 'a,b,c'.split(',', 1) }}"
						+ "{% for x in l[::-1] %}{{ x }}{% endfor %} {{ {'k': [1, 2.0, 'é', none, true]}|tojson }}",
				"", "");
		String out = ct.render(List.of(), null, false,
				Map.of("s", "abc", "t", "hello big world", "p", "  pad  ", "l", List.of(1, 2, 3)));
		assertThat(out).isEqualTo("true true ABC Hello Big World 3 hello-big-world [pad] [pad  ] [a, b,c]321"
				+ " {\"k\": [1, 2.0, \"é\", null, true]}");
	}

	@Test
	void loadsTheTemplateOfAModelDirectory() {
		Path dir = dev.blockserve.support.SharedModels.dir("tiny-random-llama");
		ChatTemplate ct = ChatTemplate.load(dir);
		assertThat(ct).isNotNull();
		assertThat(ct.render(List.of(Map.of("role", "user", "content", "Hi")), null, true, null))
			.isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
		assertThat(ChatTemplate.load(dev.blockserve.support.SharedModels.dir("stories260K"))).isNull();
	}
}
