package dev.blockserve.api;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * An assistant message's tool calls come with {@code function.arguments} as a JSON string (OpenAI's
 * wire format); chat templates write arguments with {@code tojson}, so the template must get the parsed
 * object (as vLLM passes it), or the next turn would show a doubly-encoded string.
 */
class RequestParserToolMessagesTest {

	@Test
	@SuppressWarnings("unchecked")
	void argumentsStringsBecomeObjectsForTheTemplate() {
		var body = Api.JSON.readTree("""
				{"messages": [{"role": "user", "content": "weather?"},
				 {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
				  "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]},
				 {"role": "tool", "tool_call_id": "call_1", "content": "21 C"}]}""");
		List<Map<String, Object>> messages = RequestParser.messages(body);
		Map<String, Object> call = ((List<Map<String, Object>>) messages.get(1).get("tool_calls")).get(0);
		Map<String, Object> function = (Map<String, Object>) call.get("function");
		assertThat(function.get("arguments")).isEqualTo(Map.of("city", "Paris"));
		assertThat(call.get("id")).isEqualTo("call_1");
		assertThat(messages.get(1).get("content")).isEqualTo("");
		assertThat(messages.get(2).get("tool_call_id")).isEqualTo("call_1");
	}

	@Test
	void malformedToolCallsAre400s() {
		var body = Api.JSON.readTree("""
				{"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "x", "function": "f"}]}]}""");
		assertThatThrownBy(() -> RequestParser.messages(body)).isInstanceOf(ApiException.class)
			.hasMessageContaining("tool_calls");
	}
}
