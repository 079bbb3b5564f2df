package dev.blockserve.toolcall;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The {@code auto} parsers over answers written the way each family writes them. The texts are the
 * formats of the models' own documentation (Qwen 2.5's function-calling guide, Meta's Llama 3.1 prompt
 * format, Mistral's function-calling docs for the v3 and v11 tokenizers), transcribed rather than
 * captured (no model hub here). Each is fed whole and also in small random pieces, as a stream
 * delivers it: both must give the same content and calls.
 */
class ToolCallStreamTest {

	static final JsonMapper JSON = JsonMapper.builder().build();

	record Parsed(String content, List<String> names, List<String> args) {
	}

	static Parsed run(ToolCallStream s, List<String> deltas) {
		List<ToolCallStream.Piece> pieces = new ArrayList<>();
		for (String d : deltas) {
			pieces.addAll(s.push(d));
		}
		pieces.addAll(s.finish());
		StringBuilder content = new StringBuilder();
		List<String> names = new ArrayList<>();
		List<StringBuilder> args = new ArrayList<>();
		for (ToolCallStream.Piece p : pieces) {
			if (p instanceof ToolCallStream.Content c) {
				content.append(c.text());
			}
			else if (p instanceof ToolCallStream.CallStart c) {
				assertThat(c.index()).isEqualTo(names.size());
				names.add(c.name());
				args.add(new StringBuilder(c.arguments()));
			}
			else if (p instanceof ToolCallStream.Arguments a) {
				args.get(a.index()).append(a.delta());
			}
		}
		return new Parsed(content.toString(), names, args.stream().map(b -> JSON.readTree(b.toString()).toString()).toList());
	}

	/** Whole, and split into pieces of 1 to 4 characters. */
	static Parsed both(java.util.function.Supplier<ToolCallStream> f, String text) {
		Parsed whole = run(f.get(), List.of(text));
		List<String> pieces = new ArrayList<>();
		java.util.Random r = new java.util.Random(text.length());
		for (int i = 0; i < text.length();) {
			int n = Math.min(text.length() - i, 1 + r.nextInt(4));
			pieces.add(text.substring(i, i + n));
			i += n;
		}
		Parsed streamed = run(f.get(), pieces);
		assertThat(streamed).isEqualTo(whole);
		return whole;
	}

	static String args(String json) {
		return JSON.readTree(json).toString();
	}

	@Test
	void qwen25HermesParallelCallsWithTextAround() {
		String out = """
				Let me check both for you.
				<tool_call>
				{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}
				</tool_call>
				<tool_call>
				{"name": "get_temperature_date", "arguments": {"location": "San Francisco, CA, USA", "date": "2024-10-01"}}
				</tool_call>""";
		Parsed p = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES), out);
		assertThat(p.content().strip()).isEqualTo("Let me check both for you.");
		assertThat(p.names()).containsExactly("get_current_temperature", "get_temperature_date");
		assertThat(p.args()).containsExactly(args("{\"location\": \"San Francisco, CA, USA\"}"),
				args("{\"location\": \"San Francisco, CA, USA\", \"date\": \"2024-10-01\"}"));
	}

	@Test
	void hermesPlainAnswerAndBrokenCall() {
		Parsed plain = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES), "The temperature is 26 C < 30 C.");
		assertThat(plain.names()).isEmpty();
		assertThat(plain.content()).isEqualTo("The temperature is 26 C < 30 C.");
		Parsed broken = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES), "<tool_call>\n{\"name\": oops}\n</tool_call>");
		assertThat(broken.names()).isEmpty();
		assertThat(broken.content()).isEqualTo("<tool_call>\n{\"name\": oops}\n</tool_call>");
		// cut off before the closing tag (max_tokens or EOS): a complete object still counts
		Parsed open = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES),
				"<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n");
		assertThat(open.names()).containsExactly("f");
	}

	@Test
	void llama31JsonCalls() {
		Parsed one = both(() -> ToolCallStream.auto(ToolCallFormat.LLAMA3_JSON),
				"{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"San Francisco, CA\", \"unit\": \"Fahrenheit\"}}");
		assertThat(one.names()).containsExactly("get_current_conditions");
		assertThat(one.args()).containsExactly(args("{\"location\": \"San Francisco, CA\", \"unit\": \"Fahrenheit\"}"));
		assertThat(one.content()).isEmpty();
		Parsed two = both(() -> ToolCallStream.auto(ToolCallFormat.LLAMA3_JSON),
				"<|python_tag|>{\"name\": \"search\", \"parameters\": {\"query\": \"weather\"}}; {\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}");
		assertThat(two.names()).containsExactly("search", "add");
		Parsed text = both(() -> ToolCallStream.auto(ToolCallFormat.LLAMA3_JSON), "It is sunny in San Francisco.");
		assertThat(text.names()).isEmpty();
		assertThat(text.content()).isEqualTo("It is sunny in San Francisco.");
		Parsed notACall = both(() -> ToolCallStream.auto(ToolCallFormat.LLAMA3_JSON), "{\"answer\": 42}");
		assertThat(notACall.names()).isEmpty();
		assertThat(notACall.content()).isEqualTo("{\"answer\": 42}");
	}

	@Test
	void mistralV3AndV11Calls() {
		Parsed v3 = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL),
				"[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"format\": \"celsius\"}}, {\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Lyon, France\", \"format\": \"celsius\"}}]");
		assertThat(v3.names()).containsExactly("get_current_weather", "get_current_weather");
		assertThat(v3.args().get(1)).isEqualTo(args("{\"location\": \"Lyon, France\", \"format\": \"celsius\"}"));
		// the control token is special: with skip_special_tokens the text starts at the array
		Parsed skipped = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL),
				" [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\"}}]");
		assertThat(skipped.names()).containsExactly("get_current_weather");
		Parsed v11 = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL),
				"[TOOL_CALLS]get_current_weather[ARGS]{\"location\": \"Paris, France\"}[TOOL_CALLS]get_time[ARGS]{\"tz\": \"CET\"}");
		assertThat(v11.names()).containsExactly("get_current_weather", "get_time");
		assertThat(v11.args()).containsExactly(args("{\"location\": \"Paris, France\"}"), args("{\"tz\": \"CET\"}"));
		Parsed v11Skipped = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL), "get_current_weather{\"location\": \"Paris\"}");
		assertThat(v11Skipped.names()).containsExactly("get_current_weather");
		Parsed text = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL), "Paris is sunny today [22 C].");
		assertThat(text.names()).isEmpty();
		assertThat(text.content()).isEqualTo("Paris is sunny today [22 C].");
		Parsed after = both(() -> ToolCallStream.auto(ToolCallFormat.MISTRAL),
				"Checking. [TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}]");
		assertThat(after.content()).isEqualTo("Checking. ");
		assertThat(after.names()).containsExactly("f");
	}

	/**
	 * Quirks that users of real checkpoints reported in public bug threads (the texts here are written
	 * for this test, in the shape each report shows): Qwen2.5-14B-Instruct under Ollama giving
	 * {@code arguments} as a JSON string holding the object (agno-agi/agno#3463); Hermes-2-Pro-Llama-3-8B
	 * putting {@code arguments} before {@code name} and sometimes leaving off {@code </tool_call>}
	 * (vllm-project/vllm#5649); Llama-3.1-8B-Instruct calling with non-ASCII arguments and nothing else
	 * (raullenchai/Rapid-MLX#700).
	 */
	@Test
	void quirksReportedFromRealModels() {
		Parsed stringArgs = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES),
				"<tool_call>\n{\"name\": \"lookup_fees\", \"arguments\": \"{\\\"course\\\": \\\"B.Tech CS\\\", \\\"year\\\": 2025}\"}\n</tool_call>");
		assertThat(stringArgs.names()).containsExactly("lookup_fees");
		assertThat(stringArgs.args()).containsExactly(args("{\"course\": \"B.Tech CS\", \"year\": 2025}"));
		Parsed argsFirst = both(() -> ToolCallStream.auto(ToolCallFormat.HERMES),
				"<tool_call>\n{\"arguments\": {\"city\": \"Austin\", \"state\": \"TX\"}, \"name\": \"get_current_weather\"}\n");
		assertThat(argsFirst.names()).containsExactly("get_current_weather");
		assertThat(argsFirst.args()).containsExactly(args("{\"city\": \"Austin\", \"state\": \"TX\"}"));
		assertThat(argsFirst.content()).isEmpty();
		Parsed unicode = both(() -> ToolCallStream.auto(ToolCallFormat.LLAMA3_JSON),
				"{\"name\": \"web_search\", \"parameters\": {\"query\": \"\u4eca\u5929\u5929\u6c14 \u00e9t\u00e9\"}}");
		assertThat(unicode.names()).containsExactly("web_search");
		assertThat(unicode.args()).containsExactly(args("{\"query\": \"\u4eca\u5929\u5929\u6c14 \u00e9t\u00e9\"}"));
		assertThat(unicode.content()).isEmpty();
	}

	@Test
	void requiredArrayAndNamed() {
		Parsed arr = both(() -> ToolCallStream.array(ToolCallFormat.HERMES),
				"[{\"name\": \"a\", \"parameters\": {\"x\": \"}]\\\"{\"}}, {\"name\": \"b\", \"parameters\": {}}]");
		assertThat(arr.names()).containsExactly("a", "b");
		assertThat(arr.args().get(0)).isEqualTo(args("{\"x\": \"}]\\\"{\"}"));
		Parsed named = both(() -> ToolCallStream.named("add", ToolCallFormat.HERMES), "{\"a\": 1, \"b\": 2}");
		assertThat(named.names()).containsExactly("add");
		assertThat(named.args()).containsExactly(args("{\"a\": 1, \"b\": 2}"));
	}

	@Test
	void formatFromTemplateAndIds() {
		assertThat(ToolCallFormat.detect("{%- if tools %}<tools></tools> <tool_call>")).isEqualTo(ToolCallFormat.HERMES);
		assertThat(ToolCallFormat.detect("<|start_header_id|>ipython<|end_header_id|>")).isEqualTo(ToolCallFormat.LLAMA3_JSON);
		assertThat(ToolCallFormat.detect("[AVAILABLE_TOOLS] [TOOL_CALLS]")).isEqualTo(ToolCallFormat.MISTRAL);
		assertThat(ToolCallFormat.detect("<|im_start|>")).isEqualTo(ToolCallFormat.HERMES);
		assertThat(ToolCallFormat.MISTRAL.newId()).matches("[A-Za-z0-9]{9}");
		assertThat(ToolCallFormat.HERMES.newId()).matches("call_[A-Za-z0-9]{24}");
	}
}
