package dev.blockserve.api;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.responses.FunctionTool;
import com.openai.models.responses.Response;
import com.openai.models.responses.ResponseCreateParams;
import com.openai.models.responses.ResponseFunctionToolCall;
import com.openai.models.responses.ResponseOutputItem;
import com.openai.models.responses.ResponseStreamEvent;
import com.openai.models.responses.ToolChoiceOptions;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.engine.FaultInjector;
import dev.blockserve.support.RawHttp;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiResponsesChatModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;

import org.springframework.boot.test.context.SpringBootTest;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The Responses API ({@code POST /v1/responses}) through the official OpenAI Java SDK, which validates every
 * response and stream event it parses, and LangChain4j's {@code OpenAiResponsesChatModel}: each answer must
 * equal the chat completion of the messages the request means (greedy), streamed events must add up to the
 * whole response, a required function call must come back as a function_call item whose output, sent back
 * as input items, continues the conversation exactly as the equivalent chat turn does.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ResponsesApiTest extends OpenAiServerTest {

	static final String MODEL = "tiny-random-llama";

	static final String WEATHER = "{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"The weather in a city\","
			+ "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"enum\":[\"Paris\",\"Rome\",\"Oslo\"]}},\"required\":[\"city\"],"
			+ "\"additionalProperties\":false},\"strict\":true}";

	RawHttp.Response raw(String path, String body) {
		try {
			return RawHttp.request(port, "POST", path, "Content-Type: application/json\r\n", body);
		}
		catch (java.io.IOException e) {
			throw new java.io.UncheckedIOException(e);
		}
	}

	JsonNode post(String path, String body) {
		RawHttp.Response r = raw(path, body);
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		return Sse.JSON.readTree(r.body());
	}

	String chatText(String messages, int maxTokens) {
		return post("/v1/chat/completions", "{\"model\":\"" + MODEL + "\",\"messages\":" + messages + ",\"max_tokens\":"
				+ maxTokens + ",\"temperature\":0}").path("choices").path(0).path("message").path("content").asString();
	}

	static String outputText(Response r) {
		StringBuilder b = new StringBuilder();
		for (ResponseOutputItem item : r.output()) {
			item.message().ifPresent(m -> m.content().forEach(c -> c.outputText().ifPresent(t -> b.append(t.text()))));
		}
		return b.toString();
	}

	ResponseCreateParams textParams() {
		return ResponseCreateParams.builder().model(MODEL).instructions("Answer briefly.").input("What is a block table?")
			.maxOutputTokens(12).temperature(0.0).build();
	}

	@Test
	void aTextResponseIsTheChatCompletionOfItsMessages() {
		Response r = client.responses().create(textParams());
		r.validate();
		String expected = chatText("[{\"role\":\"system\",\"content\":\"Answer briefly.\"},"
				+ "{\"role\":\"user\",\"content\":\"What is a block table?\"}]", 12);
		assertThat(outputText(r)).isEqualTo(expected).isNotEmpty();
		assertThat(r.id()).startsWith("resp_");
		assertThat(r.usage().orElseThrow().outputTokens()).isEqualTo(12);
		// 12 tokens of a random model: cut by max_output_tokens, as OpenAI reports it
		assertThat(r.status().orElseThrow().asString()).isEqualTo("incomplete");
		assertThat(r.incompleteDetails().orElseThrow().reason().orElseThrow().asString()).isEqualTo("max_output_tokens");
	}

	@Test
	void streamedEventsAddUpToTheResponse() {
		Response whole = client.responses().create(textParams());
		List<String> types = new ArrayList<>();
		StringBuilder deltas = new StringBuilder();
		List<Long> seqs = new ArrayList<>();
		Response last = null;
		try (StreamResponse<ResponseStreamEvent> s = client.responses().createStreaming(textParams())) {
			for (ResponseStreamEvent e : (Iterable<ResponseStreamEvent>) s.stream()::iterator) {
				e.validate();
				types.add(e.isOutputTextDelta() ? "delta" : e.isCreated() ? "created" : e.isIncomplete() ? "incomplete"
						: e.isCompleted() ? "completed" : "other");
				e.outputTextDelta().ifPresent(d -> {
					deltas.append(d.delta());
					seqs.add(d.sequenceNumber());
				});
				if (e.isIncomplete()) {
					last = e.asIncomplete().response();
				}
			}
		}
		assertThat(types.get(0)).isEqualTo("created");
		assertThat(types.get(types.size() - 1)).isEqualTo("incomplete");
		assertThat(seqs).isSorted().doesNotHaveDuplicates();
		assertThat(deltas.toString()).isEqualTo(outputText(whole));
		assertThat(last).isNotNull();
		assertThat(outputText(last)).isEqualTo(outputText(whole));
		assertThat(last.usage().orElseThrow().outputTokens()).isEqualTo(12);
	}

	@Test
	void aRequiredFunctionCallRoundTripsAsInputItems() {
		FunctionTool tool = FunctionTool.builder().name("get_weather").description("The weather in a city").strict(true)
			.parameters(FunctionTool.Parameters.builder().putAdditionalProperty("type", JsonValue.from("object"))
				.putAdditionalProperty("properties", JsonValue.from(Map.of("city", Map.of("type", "string", "enum", List.of("Paris", "Rome", "Oslo")))))
				.putAdditionalProperty("required", JsonValue.from(List.of("city")))
				.putAdditionalProperty("additionalProperties", JsonValue.from(false))
				.build())
			.build();
		Response r = client.responses().create(ResponseCreateParams.builder().model(MODEL).input("Weather in Paris?")
			.addTool(tool).toolChoice(ToolChoiceOptions.REQUIRED).maxOutputTokens(256).temperature(0.0).build());
		r.validate();
		List<ResponseFunctionToolCall> calls = r.output().stream().flatMap(i -> i.functionCall().stream()).toList();
		assertThat(calls).as(r.toString()).isNotEmpty();
		ResponseFunctionToolCall call = calls.get(0);
		assertThat(call.name()).isEqualTo("get_weather");
		assertThat(Sse.JSON.readTree(call.arguments()).path("city").isString()).as(call.arguments()).isTrue();
		assertThat(r.status().orElseThrow().asString()).isEqualTo("completed");

		// the call and its output sent back as items: the answer equals the chat turn with the same history
		String items = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},{\"type\":\"function_call\",\"call_id\":\""
				+ call.callId() + "\",\"name\":\"get_weather\",\"arguments\":" + Sse.JSON.writeValueAsString(call.arguments())
				+ "},{\"type\":\"function_call_output\",\"call_id\":\"" + call.callId() + "\",\"output\":\"sunny, 21 C\"}]";
		JsonNode next = post("/v1/responses", "{\"model\":\"" + MODEL + "\",\"input\":" + items + ",\"tools\":[" + WEATHER
				+ "],\"tool_choice\":\"none\",\"max_output_tokens\":10,\"temperature\":0}");
		String messages = "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},{\"role\":\"assistant\",\"content\":null,"
				+ "\"tool_calls\":[{\"id\":\"" + call.callId() + "\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
				+ "\"arguments\":" + Sse.JSON.writeValueAsString(call.arguments()) + "}}]},{\"role\":\"tool\",\"tool_call_id\":\""
				+ call.callId() + "\",\"content\":\"sunny, 21 C\"}]";
		String chat = post("/v1/chat/completions", "{\"model\":\"" + MODEL + "\",\"messages\":" + messages + ",\"tools\":[{\"type\":"
				+ "\"function\",\"function\":" + WEATHER.replace("\"type\":\"function\",", "") + "}],\"tool_choice\":\"none\","
				+ "\"max_tokens\":10,\"temperature\":0}").path("choices").path(0).path("message").path("content").asString();
		JsonNode message = next.path("output").path(0);
		assertThat(message.path("type").asString()).isEqualTo("message");
		assertThat(message.path("content").path(0).path("text").asString()).isEqualTo(chat).isNotEmpty();
	}

	@Test
	void aStreamedCallsArgumentsAddUpToItsItem() {
		String body = "{\"model\":\"" + MODEL + "\",\"input\":\"Weather?\",\"tools\":[" + WEATHER + "],\"tool_choice\":"
				+ "{\"type\":\"function\",\"name\":\"get_weather\"},\"max_output_tokens\":256,\"temperature\":0,\"stream\":true}";
		RawHttp.Response r = raw("/v1/responses", body);
		assertThat(r.status()).isEqualTo(200);
		StringBuilder args = new StringBuilder();
		String done = null;
		JsonNode item = null;
		JsonNode completed = null;
		String lastEventLine = null;
		for (String line : r.body().split("\n")) {
			if (line.startsWith("event: ")) {
				lastEventLine = line.substring(7);
			}
			if (!line.startsWith("data: ")) {
				continue;
			}
			JsonNode e = Sse.JSON.readTree(line.substring(6));
			assertThat(e.path("type").asString()).isEqualTo(lastEventLine);
			switch (e.path("type").asString()) {
				case "response.function_call_arguments.delta" -> args.append(e.path("delta").asString());
				case "response.function_call_arguments.done" -> done = e.path("arguments").asString();
				case "response.output_item.done" -> item = e.path("item");
				case "response.completed" -> completed = e.path("response");
				default -> {
				}
			}
		}
		assertThat(done).isEqualTo(args.toString());
		assertThat(item.path("type").asString()).isEqualTo("function_call");
		assertThat(item.path("arguments").asString()).isEqualTo(done);
		assertThat(Sse.JSON.readTree(done).path("city").isString()).isTrue();
		assertThat(completed.path("output").path(0).path("call_id").asString()).isEqualTo(item.path("call_id").asString());
	}

	/** top_logprobs gives every output token its entry, whole and streamed, as chat's logprobs do. */
	@Test
	void logprobsCoverEveryToken() {
		String body = "{\"model\":\"" + MODEL + "\",\"input\":\"What is a block table?\",\"max_output_tokens\":12,"
				+ "\"temperature\":0,\"top_logprobs\":2";
		JsonNode whole = post("/v1/responses", body + "}");
		JsonNode lps = whole.path("output").path(0).path("content").path(0).path("logprobs");
		assertThat(lps.size()).isEqualTo(12);
		assertThat(lps.path(0).path("top_logprobs").size()).isEqualTo(2);
		JsonNode chat = post("/v1/chat/completions", "{\"model\":\"" + MODEL + "\",\"messages\":[{\"role\":\"user\","
				+ "\"content\":\"What is a block table?\"}],\"max_tokens\":12,\"temperature\":0,\"logprobs\":true,"
				+ "\"top_logprobs\":2}").path("choices").path(0).path("logprobs").path("content");
		assertThat(lps.toString()).isEqualTo(chat.toString());
		RawHttp.Response r = raw("/v1/responses", body + ",\"stream\":true}");
		JsonNode done = r.body().lines().filter(l -> l.startsWith("data: ")).map(l -> Sse.JSON.readTree(l.substring(6)))
			.filter(e -> e.path("type").asString().equals("response.output_text.done")).findFirst().orElseThrow();
		assertThat(done.path("logprobs").toString()).isEqualTo(chat.toString());
	}

	@Test
	void aJsonSchemaFormatShapesTheText() {
		String body = "{\"model\":\"" + MODEL + "\",\"input\":\"A forecast\",\"max_output_tokens\":80,\"temperature\":0,"
				+ "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"f\",\"strict\":true,\"schema\":{\"type\":\"object\","
				+ "\"properties\":{\"sky\":{\"enum\":[\"sunny\",\"rainy\"]},\"windy\":{\"type\":\"boolean\"}},"
				+ "\"required\":[\"sky\",\"windy\"],\"additionalProperties\":false}}}}";
		JsonNode r = post("/v1/responses", body);
		assertThat(r.path("status").asString()).isEqualTo("completed");
		JsonNode answer = Sse.JSON.readTree(r.path("output").path(0).path("content").path(0).path("text").asString());
		assertThat(answer.path("sky").asString()).isIn("sunny", "rainy");
		assertThat(answer.path("windy").isBoolean()).isTrue();
		assertThat(r.path("text").path("format").path("name").asString()).isEqualTo("f");
	}

	@Test
	void langChain4jsResponsesModelGetsTheSameAnswer() {
		OpenAiResponsesChatModel model = OpenAiResponsesChatModel.builder().baseUrl("http://127.0.0.1:" + port + "/v1")
			.apiKey("unused").modelName(MODEL).temperature(0.0).maxOutputTokens(12).build();
		ChatResponse answer = model.chat(dev.langchain4j.data.message.UserMessage.from("What is a block table?"));
		assertThat(answer.aiMessage().text())
			.isEqualTo(chatText("[{\"role\":\"user\",\"content\":\"What is a block table?\"}]", 12));
	}

	/** A request that fails after its stream started ends with an error event in the stream's sequence. */
	@Test
	void aFailureMidStreamIsAnErrorEvent() {
		engine.faults((stage, prompt, params) -> {
			if (stage == FaultInjector.Stage.SAMPLE && Long.valueOf(4242).equals(params.seed())) {
				throw new IllegalStateException("injected failure");
			}
		});
		try {
			RawHttp.Response r = raw("/v1/responses", "{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"seed\":4242,"
					+ "\"max_output_tokens\":8,\"stream\":true}");
			assertThat(r.status()).isEqualTo(200);
			List<JsonNode> events = r.body().lines().filter(l -> l.startsWith("data: "))
				.map(l -> Sse.JSON.readTree(l.substring(6))).toList();
			assertThat(events.get(0).path("type").asString()).isEqualTo("response.created");
			JsonNode last = events.get(events.size() - 1);
			assertThat(last.path("type").asString()).as(r.body()).isEqualTo("error");
			assertThat(last.path("message").asString()).contains("injected failure");
			assertThat(last.path("sequence_number").asInt()).isEqualTo(events.size() - 1);
		}
		finally {
			engine.faults(FaultInjector.NONE);
		}
		// the next request is served
		assertThat(post("/v1/responses", "{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"max_output_tokens\":4}")
			.path("status").asString()).isEqualTo("incomplete");
	}

	@Test
	void whatItCannotServeIs400NamingTheField() {
		Map<String, String> cases = Map.of(
				"{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}", "previous_response_id",
				"{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"tools\":[{\"type\":\"web_search\"}]}", "tools",
				"{\"model\":\"" + MODEL + "\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
						+ "\"image_url\":\"http://x\"}]}]}", "input",
				"{\"model\":\"" + MODEL + "\"}", "input",
				"{\"model\":\"" + MODEL + "\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "input",
				"{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"include\":[\"file_search_call.results\"]}", "include",
				"{\"model\":\"" + MODEL + "\",\"input\":\"hi\",\"text\":{\"format\":{\"type\":\"grammar\"}}}", "text",
				"{\"model\":\"other\",\"input\":\"hi\"}", "model");
		cases.forEach((body, param) -> {
			RawHttp.Response r = raw("/v1/responses", body);
			assertThat(r.status()).as(body).isIn(400, 404);
			JsonNode error = Sse.JSON.readTree(r.body()).path("error");
			assertThat(error.path("param").asString()).as(r.body()).isEqualTo(param);
			assertThat(error.path("message").asString()).isNotEmpty();
		});
	}
}
