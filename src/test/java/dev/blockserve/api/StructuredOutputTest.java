package dev.blockserve.api;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Pattern;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.constraint.SchemaOracle;
import dev.blockserve.constraint.Schemas;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Structured output and tool calls against the real server on tiny-random-llama (random weights, so the
 * model has no wish to write JSON: the grammar alone makes it valid). Every output that ends with
 * "stop" is judged by networknt's JSON Schema validator, java.util.regex or the choice list.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=512" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class StructuredOutputTest {

	static final JsonMapper JSON = JsonMapper.builder().build();

	static final String TOOLS = """
			[{"type":"function","function":{"name":"get_weather","description":"Weather in a city",
			  "parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12},
			  "unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}}},
			 {"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{
			  "a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"],"additionalProperties":false}}}]""";

	@LocalServerPort
	int port;

	final HttpClient http = HttpClient.newHttpClient();

	ObjectNode chat(String user) {
		ObjectNode b = JSON.createObjectNode();
		b.put("model", "tiny-random-llama");
		b.putArray("messages").addObject().put("role", "user").put("content", user);
		return b;
	}

	CompletableFuture<HttpResponse<String>> postAsync(String path, JsonNode body) {
		return http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
				HttpResponse.BodyHandlers.ofString());
	}

	JsonNode ok(String path, JsonNode body) {
		HttpResponse<String> r = postAsync(path, body).join();
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		return JSON.readTree(r.body());
	}

	JsonNode error(String path, JsonNode body) {
		HttpResponse<String> r = postAsync(path, body).join();
		assertThat(r.statusCode()).as(r.body()).isEqualTo(400);
		JsonNode e = JSON.readTree(r.body()).path("error");
		assertThat(e.path("type").asString()).isEqualTo("invalid_request_error");
		return e;
	}

	/** Sends all bodies at once (the engine batches them) and returns the responses in order. */
	List<JsonNode> all(String path, List<ObjectNode> bodies) {
		List<CompletableFuture<HttpResponse<String>>> fs = new ArrayList<>();
		for (ObjectNode b : bodies) {
			fs.add(postAsync(path, b));
		}
		List<JsonNode> out = new ArrayList<>();
		for (var f : fs) {
			HttpResponse<String> r = f.join();
			assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
			out.add(JSON.readTree(r.body()));
		}
		return out;
	}

	@Test
	void twoHundredSampledOutputsAcrossTenSchemasValidate() {
		int stopped = 0;
		int total = 0;
		for (int k = 0; k < Schemas.TEN.size(); k++) {
			JsonNode schema = JSON.readTree(Schemas.TEN.get(k));
			SchemaOracle oracle = new SchemaOracle(schema);
			List<ObjectNode> bodies = new ArrayList<>();
			for (int seed = 0; seed < 20; seed++) {
				ObjectNode b = chat("Describe item " + seed + " as JSON.");
				b.put("temperature", 1.0).put("seed", 1000 * k + seed).put("max_tokens", 400);
				ObjectNode rf = b.putObject("response_format").put("type", "json_schema");
				rf.putObject("json_schema").put("name", "s" + k).put("strict", true).set("schema", schema);
				bodies.add(b);
			}
			for (JsonNode r : all("/v1/chat/completions", bodies)) {
				JsonNode choice = r.path("choices").get(0);
				String text = choice.path("message").path("content").asString();
				total++;
				if ("stop".equals(choice.path("finish_reason").asString())) {
					stopped++;
					assertThat(oracle.errors(text)).as("schema %d: %s", k + 1, text).isEmpty();
				}
				else {
					assertThat(choice.path("finish_reason").asString()).isEqualTo("length");
				}
			}
		}
		assertThat(total).isEqualTo(200);
		System.out.println("[structured output] " + stopped + " of 200 sampled outputs ended with stop");
		assertThat(stopped).as("outputs that ended (and were judged)").isGreaterThanOrEqualTo(150);
	}

	@Test
	void jsonObjectRegexAndChoice() {
		List<ObjectNode> bodies = new ArrayList<>();
		for (int seed = 0; seed < 20; seed++) {
			ObjectNode b = chat("JSON please");
			b.put("temperature", 1.0).put("seed", seed).put("max_tokens", 300);
			b.putObject("response_format").put("type", "json_object");
			bodies.add(b);
		}
		int stopped = 0;
		SchemaOracle object = new SchemaOracle("{\"type\":\"object\"}");
		for (JsonNode r : all("/v1/chat/completions", bodies)) {
			JsonNode c = r.path("choices").get(0);
			if ("stop".equals(c.path("finish_reason").asString())) {
				stopped++;
				assertThat(object.errors(c.path("message").path("content").asString())).isEmpty();
			}
		}
		assertThat(stopped).isGreaterThanOrEqualTo(10);

		Pattern sku = Pattern.compile("[A-Z]{2}-[0-9]{3}( x[1-9])?");
		List<ObjectNode> regex = new ArrayList<>();
		List<ObjectNode> choice = new ArrayList<>();
		for (int seed = 0; seed < 20; seed++) {
			ObjectNode b = JSON.createObjectNode().put("prompt", "SKU:").put("temperature", 1.0).put("seed", seed)
				.put("max_tokens", 20);
			regex.add(b.deepCopy().put("guided_regex", sku.pattern()));
			ObjectNode c = b.deepCopy();
			if (seed % 2 == 0) {
				c.putArray("guided_choice").add("positive").add("negative").add("neutral");
			}
			else {
				c.putObject("structured_outputs").putArray("choice").add("positive").add("negative").add("neutral");
			}
			choice.add(c);
		}
		for (JsonNode r : all("/v1/completions", regex)) {
			JsonNode c = r.path("choices").get(0);
			assertThat(c.path("finish_reason").asString()).isEqualTo("stop");
			assertThat(sku.matcher(c.path("text").asString()).matches()).as(c.path("text").asString()).isTrue();
		}
		// response_format on completions, and a guided_json given as a string
		JsonNode schema = JSON.readTree(Schemas.TEN.get(2));
		SchemaOracle enums = new SchemaOracle(schema);
		List<ObjectNode> rf = new ArrayList<>();
		for (int seed = 0; seed < 10; seed++) {
			ObjectNode b = JSON.createObjectNode().put("prompt", "Colour:").put("temperature", 1.0).put("seed", seed)
				.put("max_tokens", 200);
			if (seed % 2 == 0) {
				b.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "c").set("schema",
						schema);
			}
			else {
				b.put("guided_json", schema.toString());
			}
			rf.add(b);
		}
		for (JsonNode r : all("/v1/completions", rf)) {
			JsonNode c = r.path("choices").get(0);
			assertThat(c.path("finish_reason").asString()).isEqualTo("stop");
			assertThat(enums.errors(c.path("text").asString())).as(c.path("text").asString()).isEmpty();
		}
		for (JsonNode r : all("/v1/completions", choice)) {
			JsonNode c = r.path("choices").get(0);
			assertThat(c.path("text").asString()).isIn("positive", "negative", "neutral");
			assertThat(c.path("finish_reason").asString()).isEqualTo("stop");
		}
		// operators see the masks' cost: computed walks and cache hits, as Prometheus histograms
		String metrics = http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
				HttpResponse.BodyHandlers.ofString()).join().body();
		for (String result : new String[] { "computed", "cached" }) {
			String line = metrics.lines()
				.filter(l -> l.startsWith("blockserve_grammar_mask_seconds_count{") && l.contains("result=\"" + result + "\""))
				.findFirst().orElseThrow(() -> new AssertionError("no grammar mask count for " + result + " in\n" + metrics));
			assertThat(Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1))).as(line).isPositive();
		}
		assertThat(metrics).contains("blockserve_grammar_mask_seconds_bucket{model_name=\"tiny-random-llama\",result=\"computed\",le=\"0.001\"}");
	}

	@Test
	void nChoicesStreamingAndLength() {
		JsonNode schema = JSON.readTree(Schemas.TEN.get(4));
		SchemaOracle oracle = new SchemaOracle(schema);
		ObjectNode b = chat("user record");
		b.put("temperature", 1.0).put("seed", 7).put("max_tokens", 300).put("n", 4);
		b.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "u").set("schema",
				schema);
		JsonNode r = ok("/v1/chat/completions", b);
		List<String> whole = new ArrayList<>();
		for (JsonNode c : r.path("choices")) {
			String text = c.path("message").path("content").asString();
			whole.add(text);
			if ("stop".equals(c.path("finish_reason").asString())) {
				assertThat(oracle.errors(text)).as(text).isEmpty();
			}
		}
		assertThat(whole).doesNotHaveDuplicates();
		// the same seed streamed gives the same texts
		b.put("stream", true);
		String[] streamed = new String[] { "", "", "", "" };
		for (String line : postAsync("/v1/chat/completions", b).join().body().split("\n")) {
			if (line.startsWith("data: {")) {
				JsonNode chunk = JSON.readTree(line.substring(6));
				for (JsonNode c : chunk.path("choices")) {
					streamed[c.path("index").asInt()] += c.path("delta").path("content").asString("");
				}
			}
		}
		assertThat(List.of(streamed)).isEqualTo(whole);
		// a stop string cuts the JSON where it appears, as it would free text
		ObjectNode stop = chat("list");
		stop.put("temperature", 1.0).put("seed", 5).put("max_tokens", 300).putArray("stop").add("\":");
		stop.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "u").set("schema",
				schema);
		JsonNode sc = ok("/v1/chat/completions", stop).path("choices").get(0);
		assertThat(sc.path("finish_reason").asString()).isEqualTo("stop");
		assertThat(sc.path("message").path("content").asString().replaceAll("\\s", "")).isEqualTo("{\"user");
		// cut short by max_tokens: "length", and the text is a prefix the grammar still allows
		ObjectNode cut = chat("short");
		cut.put("temperature", 0).put("max_tokens", 3);
		cut.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "u").set("schema",
				schema);
		JsonNode c = ok("/v1/chat/completions", cut).path("choices").get(0);
		assertThat(c.path("finish_reason").asString()).isEqualTo("length");
		assertThat(c.path("message").path("content").asString()).startsWith("{").doesNotEndWith("}");
	}

	@Test
	void badSchemasAndToolChoicesAre400s() {
		ObjectNode b = chat("x");
		b.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "n")
			.set("schema", JSON.readTree("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\",\"minimum\":0}}}"));
		JsonNode e = error("/v1/chat/completions", b);
		assertThat(e.path("message").asString()).contains("'minimum'").contains("#/properties/n");
		assertThat(e.path("param").asString()).isEqualTo("response_format");

		ObjectNode t = chat("x");
		t.putObject("response_format").put("type", "json_schema").putObject("json_schema").put("name", "n")
			.set("schema", JSON.readTree("{\"type\":\"strng\"}"));
		assertThat(error("/v1/chat/completions", t).path("message").asString()).contains("unknown type 'strng'");

		ObjectNode cyc = chat("x");
		cyc.put("guided_json", "{\"$ref\": \"#\"}");
		JsonNode ce = error("/v1/chat/completions", cyc);
		assertThat(ce.path("message").asString()).contains("matches nothing");
		assertThat(ce.path("param").asString()).isEqualTo("guided_json");

		ObjectNode f = chat("x");
		f.putObject("response_format").put("type", "xml");
		assertThat(error("/v1/chat/completions", f).path("message").asString()).contains("response_format.type");

		ObjectNode r = JSON.createObjectNode().put("prompt", "x").put("guided_regex", "(a)\\1");
		assertThat(error("/v1/completions", r).path("message").asString()).contains("\\1");

		ObjectNode u = chat("x");
		u.set("tools", JSON.readTree(TOOLS));
		u.putObject("tool_choice").put("type", "function").putObject("function").put("name", "nope");
		JsonNode ue = error("/v1/chat/completions", u);
		assertThat(ue.path("message").asString()).contains("'nope'");
		assertThat(ue.path("param").asString()).isEqualTo("tool_choice");

		ObjectNode w = chat("x");
		w.put("tool_choice", "required");
		assertThat(error("/v1/chat/completions", w).path("message").asString()).contains("needs 'tools'");

		ObjectNode both = chat("x");
		both.set("tools", JSON.readTree(TOOLS));
		both.put("tool_choice", "required");
		both.putObject("response_format").put("type", "json_object");
		assertThat(error("/v1/chat/completions", both).path("param").asString()).isEqualTo("tool_choice");
	}

	/** A template that writes no think blocks (ChatML here): a block in the answer is answer text. */
	@Test
	void aThinkBlockIsContentWhereTheTemplateWritesNone() {
		ObjectNode b = chat("x");
		b.put("guided_regex", "<think>ab</think>cd");
		b.put("max_tokens", 30);
		JsonNode message = ok("/v1/chat/completions", b).path("choices").get(0).path("message");
		assertThat(message.path("content").asString()).isEqualTo("<think>ab</think>cd");
		assertThat(message.has("reasoning_content")).isFalse();
	}

	@Test
	void requiredAndNamedToolCallsAreValidAndTheNextTurnRenders() {
		JsonNode tools = JSON.readTree(TOOLS);
		SchemaOracle weather = new SchemaOracle(tools.get(0).path("function").path("parameters"));
		SchemaOracle add = new SchemaOracle(tools.get(1).path("function").path("parameters"));
		for (int seed = 0; seed < 8; seed++) {
			ObjectNode b = chat("What is the weather in Paris?");
			b.set("tools", tools);
			b.put("tool_choice", "required").put("temperature", 1.0).put("seed", seed).put("max_tokens", 300);
			b.put("parallel_tool_calls", seed % 2 == 0);
			JsonNode c = ok("/v1/chat/completions", b).path("choices").get(0);
			if (!"tool_calls".equals(c.path("finish_reason").asString())) {
				assertThat(c.path("finish_reason").asString()).isEqualTo("length");
				continue;
			}
			JsonNode msg = c.path("message");
			assertThat(msg.path("content").isNull()).isTrue();
			assertThat(msg.path("tool_calls").size()).isGreaterThanOrEqualTo(1);
			if (seed % 2 == 1) {
				assertThat(msg.path("tool_calls").size()).as("parallel_tool_calls false").isEqualTo(1);
			}
			for (JsonNode call : msg.path("tool_calls")) {
				assertThat(call.path("id").asString()).startsWith("call_");
				assertThat(call.path("type").asString()).isEqualTo("function");
				String name = call.path("function").path("name").asString();
				String args = call.path("function").path("arguments").asString();
				assertThat(name).isIn("get_weather", "add");
				assertThat((name.equals("add") ? add : weather).errors(args)).as(args).isEmpty();
			}
			// next turn: the assistant's calls and the tool's answers render and complete
			ObjectNode next = chat("What is the weather in Paris?");
			ArrayNode messages = (ArrayNode) next.get("messages");
			messages.addObject().put("role", "assistant").putNull("content").set("tool_calls", msg.path("tool_calls"));
			for (JsonNode call : msg.path("tool_calls")) {
				messages.addObject().put("role", "tool").put("tool_call_id", call.path("id").asString()).put("content", "21 C");
			}
			next.set("tools", tools);
			next.put("max_tokens", 8);
			JsonNode answer = ok("/v1/chat/completions", next).path("choices").get(0);
			assertThat(answer.path("finish_reason").asString()).isIn("stop", "length", "tool_calls");
		}
		// a named function: one call of it, arguments valid, streamed as deltas that add up to the same
		ObjectNode named = chat("Add two numbers");
		named.set("tools", tools);
		named.putObject("tool_choice").put("type", "function").putObject("function").put("name", "add");
		named.put("temperature", 1.0).put("seed", 3).put("max_tokens", 100);
		JsonNode msg = ok("/v1/chat/completions", named).path("choices").get(0).path("message");
		assertThat(msg.path("tool_calls").size()).isEqualTo(1);
		JsonNode call = msg.path("tool_calls").get(0);
		assertThat(call.path("function").path("name").asString()).isEqualTo("add");
		String args = call.path("function").path("arguments").asString();
		assertThat(add.errors(args)).as(args).isEmpty();
		named.put("stream", true);
		StringBuilder streamedArgs = new StringBuilder();
		String streamedName = null;
		String finish = null;
		for (String line : postAsync("/v1/chat/completions", named).join().body().split("\n")) {
			if (line.startsWith("data: {")) {
				JsonNode ch = JSON.readTree(line.substring(6)).path("choices").get(0);
				for (JsonNode d : ch.path("delta").path("tool_calls")) {
					assertThat(d.path("index").asInt()).isZero();
					if (d.has("id")) {
						streamedName = d.path("function").path("name").asString();
					}
					streamedArgs.append(d.path("function").path("arguments").asString(""));
				}
				if (!ch.path("finish_reason").isNull()) {
					finish = ch.path("finish_reason").asString();
				}
			}
		}
		assertThat(streamedName).isEqualTo("add");
		assertThat(streamedArgs.toString()).isEqualTo(args);
		assertThat(finish).isEqualTo("tool_calls");
	}

	@Test
	void toolChoiceNoneAnswersInText() {
		ObjectNode b = chat("Weather?");
		b.set("tools", JSON.readTree(TOOLS));
		b.put("tool_choice", "none").put("temperature", 1.0).put("seed", 2).put("max_tokens", 16);
		JsonNode c = ok("/v1/chat/completions", b).path("choices").get(0);
		assertThat(c.path("message").has("tool_calls")).isFalse();
		assertThat(c.path("message").path("content").isString()).isTrue();
		assertThat(c.path("finish_reason").asString()).isIn("stop", "length");
	}

	@Test
	void requiredCallsStreamAsWholeCallDeltas() {
		ObjectNode b = chat("Weather?");
		b.set("tools", JSON.readTree(TOOLS));
		b.put("tool_choice", "required").put("temperature", 1.0).put("seed", 11).put("max_tokens", 300);
		JsonNode whole = ok("/v1/chat/completions", b).path("choices").get(0).path("message").path("tool_calls");
		b.put("stream", true);
		List<String> names = new ArrayList<>();
		List<String> args = new ArrayList<>();
		for (String line : postAsync("/v1/chat/completions", b).join().body().split("\n")) {
			if (line.startsWith("data: {")) {
				for (JsonNode d : JSON.readTree(line.substring(6)).path("choices").get(0).path("delta").path("tool_calls")) {
					assertThat(d.path("index").asInt()).isEqualTo(names.size());
					names.add(d.path("function").path("name").asString());
					args.add(d.path("function").path("arguments").asString());
				}
			}
		}
		assertThat(names).hasSize(whole.size());
		for (int i = 0; i < names.size(); i++) {
			assertThat(names.get(i)).isEqualTo(whole.get(i).path("function").path("name").asString());
			assertThat(args.get(i)).isEqualTo(whole.get(i).path("function").path("arguments").asString());
		}
		// n = 2: each choice is its own call list
		ObjectNode two = b.deepCopy().put("stream", false).put("n", 2);
		for (JsonNode c : ok("/v1/chat/completions", two).path("choices")) {
			if ("tool_calls".equals(c.path("finish_reason").asString())) {
				assertThat(c.path("message").path("tool_calls").size()).isPositive();
			}
			else {
				assertThat(c.path("finish_reason").asString()).isEqualTo("length");
			}
		}
	}
}
