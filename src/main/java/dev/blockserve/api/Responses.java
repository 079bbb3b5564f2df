package dev.blockserve.api;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import reactor.core.publisher.Flux;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

import org.springframework.core.io.buffer.DataBuffer;

/**
 * OpenAI's Responses API ({@code POST /v1/responses}) as a translation over chat completions: a request
 * becomes the chat request it means (instructions and input items as messages, function tools, text
 * format as response_format), and the chat output becomes the response's output items (reasoning,
 * message, function calls), whole or as the Responses stream's typed events. Nothing is stored, so
 * {@code previous_response_id} and conversations are refused with a 400 that says so; the client sends
 * the whole conversation as input items, as with {@code store: false}. Stateless; the stream's
 * translator lives for one response, on the threads its Flux runs on.
 */
final class Responses {

	/** vLLM's sampling extras a Responses request may carry; passed to the chat request as they are. */
	private static final Set<String> PASSED = Set.of("temperature", "top_p", "seed", "top_k", "min_p",
			"repetition_penalty", "presence_penalty", "frequency_penalty", "stop", "ignore_eos", "min_tokens",
			"logit_bias", "parallel_tool_calls", "chat_template_kwargs", "priority", "cache_salt", "model", "guided_json",
			"guided_regex", "guided_choice", "structured_outputs", "include_reasoning");

	private Responses() {
	}

	/** A Responses request and the chat request it translates to. */
	record Request(JsonNode body, ObjectNode chat, boolean stream, boolean logprobs) {
	}

	/** Translates a Responses request; every part it cannot serve is a 400 naming its field. */
	static Request request(JsonNode body) {
		if (!body.isObject()) {
			throw ApiException.badRequest("the request body must be a JSON object", null);
		}
		for (String stateful : List.of("previous_response_id", "conversation")) {
			JsonNode v = body.get(stateful);
			if (v != null && !v.isNull()) {
				throw ApiException.badRequest("'" + stateful + "' is not supported: this server stores no responses; "
						+ "send the conversation's items in 'input' (as with store: false)", stateful);
			}
		}
		if (RequestParser.optBool(body, "background", false)) {
			throw ApiException.badRequest("'background' responses are not supported", "background");
		}
		if (body.has("prompt") && !body.get("prompt").isNull()) {
			throw ApiException.badRequest("'prompt' (stored prompt templates) is not supported", "prompt");
		}
		ObjectNode chat = Sse.JSON.createObjectNode();
		for (String f : PASSED) {
			if (body.has(f)) {
				chat.set(f, body.get(f));
			}
		}
		ArrayNode messages = chat.putArray("messages");
		JsonNode instructions = body.get("instructions");
		if (instructions != null && !instructions.isNull()) {
			if (!instructions.isString()) {
				throw ApiException.badRequest("'instructions' must be a string", "instructions");
			}
			messages.addObject().put("role", "system").put("content", instructions.asString());
		}
		input(body.get("input"), messages);
		JsonNode max = body.get("max_output_tokens");
		if (max != null && !max.isNull()) {
			chat.set("max_tokens", max);
		}
		tools(body, chat);
		format(body.path("text").path("format"), chat);
		boolean logprobs = body.has("top_logprobs") && !body.get("top_logprobs").isNull()
				|| include(body).contains("message.output_text.logprobs");
		if (logprobs) {
			chat.put("logprobs", true);
			if (body.has("top_logprobs")) {
				chat.set("top_logprobs", body.get("top_logprobs"));
			}
		}
		boolean stream = RequestParser.optBool(body, "stream", false);
		if (stream) {
			chat.put("stream", true);
			chat.putObject("stream_options").put("include_usage", true);
		}
		return new Request(body, chat, stream, logprobs);
	}

	private static List<String> include(JsonNode body) {
		JsonNode inc = body.get("include");
		List<String> out = new ArrayList<>();
		if (inc == null || inc.isNull()) {
			return out;
		}
		if (!inc.isArray()) {
			throw ApiException.badRequest("'include' must be an array of strings", "include");
		}
		for (JsonNode i : inc) {
			String v = i.asString("");
			if (!v.equals("message.output_text.logprobs") && !v.equals("reasoning.encrypted_content")) {
				throw ApiException.badRequest("'include' value '" + v + "' is not supported (only "
						+ "message.output_text.logprobs and reasoning.encrypted_content, which is never produced)", "include");
			}
			out.add(v);
		}
		return out;
	}

	/** Input items as chat messages: a string is one user message; function calls and their outputs become tool turns. */
	private static void input(JsonNode input, ArrayNode messages) {
		if (input == null || input.isNull()) {
			throw ApiException.badRequest("'input' is required", "input");
		}
		if (input.isString()) {
			messages.addObject().put("role", "user").put("content", input.asString());
			return;
		}
		if (!input.isArray()) {
			throw ApiException.badRequest("'input' must be a string or an array of items", "input");
		}
		ArrayNode calls = null; // consecutive function calls: one assistant turn
		for (int i = 0; i < input.size(); i++) {
			JsonNode item = input.get(i);
			String where = "input[" + i + "]";
			String type = item.path("type").asString(item.has("role") ? "message" : "");
			switch (type) {
				case "message" -> {
					calls = null;
					String role = item.path("role").asString("");
					if (!List.of("user", "system", "developer", "assistant").contains(role)) {
						throw ApiException.badRequest(where + ".role must be one of user, system, developer, assistant", "input");
					}
					messages.addObject().put("role", role).put("content", text(item.get("content"), where));
				}
				case "function_call" -> {
					if (calls == null) {
						ObjectNode turn = messages.addObject().put("role", "assistant");
						turn.putNull("content");
						calls = turn.putArray("tool_calls");
					}
					ObjectNode call = calls.addObject();
					call.put("id", required(item, "call_id", where)).put("type", "function");
					call.putObject("function").put("name", required(item, "name", where))
						.put("arguments", item.path("arguments").asString("{}"));
				}
				case "function_call_output" -> {
					calls = null;
					JsonNode out = item.get("output");
					messages.addObject().put("role", "tool").put("tool_call_id", required(item, "call_id", where))
						.put("content", out != null && out.isString() ? out.asString() : text(out, where + ".output"));
				}
				case "reasoning" -> {
					// the model's earlier reasoning: chat templates drop it from past turns, so it is not sent
				}
				default -> throw ApiException.badRequest(where + ": item type '" + type + "' is not supported (message, "
						+ "function_call, function_call_output, reasoning)", "input");
			}
		}
	}

	private static String required(JsonNode item, String field, String where) {
		JsonNode v = item.get(field);
		if (v == null || !v.isString()) {
			throw ApiException.badRequest(where + "." + field + " must be a string", "input");
		}
		return v.asString();
	}

	/** A message's content: a string, or text parts (input_text, output_text) joined. */
	private static String text(JsonNode content, String where) {
		if (content == null || content.isNull()) {
			throw ApiException.badRequest(where + ".content is required", "input");
		}
		if (content.isString()) {
			return content.asString();
		}
		if (!content.isArray()) {
			throw ApiException.badRequest(where + ".content must be a string or an array of parts", "input");
		}
		StringBuilder b = new StringBuilder();
		for (JsonNode part : content) {
			String type = part.path("type").asString("");
			if (!type.equals("input_text") && !type.equals("output_text") && !type.equals("text")) {
				throw ApiException.badRequest(where + ": content part '" + type + "' is not supported (text parts only)",
						"input");
			}
			b.append(part.path("text").asString(""));
		}
		return b.toString();
	}

	/** Function tools (flat, as Responses writes them) as chat tools; tool_choice likewise. */
	private static void tools(JsonNode body, ObjectNode chat) {
		JsonNode tools = body.get("tools");
		if (tools != null && !tools.isNull()) {
			if (!tools.isArray()) {
				throw ApiException.badRequest("'tools' must be an array", "tools");
			}
			ArrayNode out = chat.putArray("tools");
			for (JsonNode t : tools) {
				String type = t.path("type").asString("");
				if (!type.equals("function")) {
					throw ApiException.badRequest("tool type '" + type + "' is not supported (function tools only)", "tools");
				}
				ObjectNode f = out.addObject().put("type", "function").putObject("function");
				for (String k : List.of("name", "description", "parameters", "strict")) {
					if (t.has(k)) {
						f.set(k, t.get(k));
					}
				}
			}
		}
		JsonNode choice = body.get("tool_choice");
		if (choice == null || choice.isNull()) {
			return;
		}
		if (choice.isString()) {
			chat.set("tool_choice", choice);
			return;
		}
		if (!choice.path("type").asString("").equals("function") || !choice.path("name").isString()) {
			throw ApiException.badRequest("'tool_choice' must be none, auto, required or {\"type\": \"function\", "
					+ "\"name\": ...}", "tool_choice");
		}
		chat.putObject("tool_choice").put("type", "function").putObject("function").put("name", choice.get("name").asString());
	}

	/** text.format as response_format. */
	private static void format(JsonNode format, ObjectNode chat) {
		if (format.isMissingNode() || format.isNull()) {
			return;
		}
		String type = format.path("type").asString("");
		switch (type) {
			case "text", "json_object" -> chat.putObject("response_format").put("type", type);
			case "json_schema" -> {
				ObjectNode schema = chat.putObject("response_format").put("type", "json_schema").putObject("json_schema");
				for (String k : List.of("name", "schema", "strict", "description")) {
					if (format.has(k)) {
						schema.set(k, format.get(k));
					}
				}
			}
			default -> throw ApiException.badRequest("text.format type '" + type + "' is not supported (text, "
					+ "json_object, json_schema)", "text");
		}
	}

	// ---- output

	/** The response object around {@code output}: status, usage and the request's settings echoed. */
	static ObjectNode response(Request r, String id, long createdAt, String model, String status, String finish,
			ArrayNode output, Dto.Usage usage) {
		JsonNode b = r.body();
		ObjectNode o = Sse.JSON.createObjectNode();
		o.put("id", id).put("object", "response").put("created_at", createdAt).put("status", status);
		o.putNull("error");
		if ("incomplete".equals(status)) {
			o.putObject("incomplete_details").put("reason", "length".equals(finish) ? "max_output_tokens" : finish);
		}
		else {
			o.putNull("incomplete_details");
		}
		o.set("instructions", b.has("instructions") ? b.get("instructions") : null);
		o.set("max_output_tokens", b.has("max_output_tokens") ? b.get("max_output_tokens") : null);
		o.put("model", model);
		o.set("output", output);
		o.put("parallel_tool_calls", b.path("parallel_tool_calls").asBoolean(true));
		o.putNull("previous_response_id");
		o.putObject("reasoning").putNull("effort").putNull("summary");
		o.put("store", false);
		o.put("temperature", b.path("temperature").asDouble(1.0));
		ObjectNode text = o.putObject("text");
		if (b.path("text").path("format").isObject()) {
			text.set("format", b.path("text").path("format"));
		}
		else {
			text.putObject("format").put("type", "text");
		}
		o.set("tool_choice", b.has("tool_choice") ? b.get("tool_choice") : Sse.JSON.getNodeFactory().stringNode("auto"));
		o.set("tools", b.path("tools").isArray() ? b.get("tools") : Sse.JSON.createArrayNode());
		o.put("top_p", b.path("top_p").asDouble(1.0));
		o.put("truncation", "disabled");
		o.set("metadata", b.path("metadata").isObject() ? b.get("metadata") : Sse.JSON.createObjectNode());
		o.set("user", b.has("user") ? b.get("user") : null);
		if (usage != null) {
			ObjectNode u = o.putObject("usage");
			u.put("input_tokens", usage.promptTokens());
			Integer cached = usage.promptTokensDetails() == null ? null : usage.promptTokensDetails().get("cached_tokens");
			u.putObject("input_tokens_details").put("cached_tokens", cached == null ? 0 : cached).put("cache_write_tokens", 0);
			u.put("output_tokens", usage.completionTokens());
			u.putObject("output_tokens_details").put("reasoning_tokens", 0);
			u.put("total_tokens", usage.totalTokens());
		}
		else {
			o.putNull("usage");
		}
		return o;
	}

	private static String status(String finish) {
		return "length".equals(finish) ? "incomplete" : "completed";
	}

	/** A whole chat completion (one choice) as a response. */
	static ObjectNode response(Request r, String id, long createdAt, String model, Dto.ChatCompletion c) {
		Dto.ChatChoice choice = c.choices().get(0);
		Dto.ChatMessage m = choice.message();
		ArrayNode output = Sse.JSON.createArrayNode();
		if (m.reasoningContent() != null && !m.reasoningContent().isEmpty()) {
			output.add(reasoningItem(Api.id("rs_"), m.reasoningContent()));
		}
		boolean calls = m.toolCalls() != null && !m.toolCalls().isEmpty();
		if (m.content() != null && !m.content().isEmpty() || !calls && output.isEmpty()) {
			output.add(messageItem(Api.id("msg_"), "completed", m.content() == null ? "" : m.content(),
					logprobs(choice.logprobs(), r.logprobs())));
		}
		if (m.toolCalls() != null) {
			for (Dto.ToolCall t : m.toolCalls()) {
				output.add(callItem(Api.id("fc_"), t.id(), t.function().name(), t.function().arguments(), "completed"));
			}
		}
		return response(r, id, createdAt, model, status(choice.finishReason()), choice.finishReason(), output, c.usage());
	}

	private static ObjectNode reasoningItem(String id, String text) {
		ObjectNode item = Sse.JSON.createObjectNode().put("type", "reasoning").put("id", id);
		item.putArray("summary");
		item.putArray("content").addObject().put("type", "reasoning_text").put("text", text);
		return item;
	}

	private static ObjectNode messageItem(String id, String status, String text, ArrayNode logprobs) {
		ObjectNode item = Sse.JSON.createObjectNode().put("type", "message").put("id", id).put("status", status)
			.put("role", "assistant");
		ArrayNode content = item.putArray("content");
		if (text != null) {
			content.add(textPart(text, logprobs));
		}
		return item;
	}

	private static ObjectNode textPart(String text, ArrayNode logprobs) {
		ObjectNode part = Sse.JSON.createObjectNode().put("type", "output_text").put("text", text);
		part.putArray("annotations");
		part.set("logprobs", logprobs);
		return part;
	}

	private static ObjectNode callItem(String id, String callId, String name, String arguments, String status) {
		return Sse.JSON.createObjectNode().put("type", "function_call").put("id", id).put("call_id", callId)
			.put("name", name).put("arguments", arguments).put("status", status);
	}

	/** Chat logprobs as output_text logprobs (the same entries: token, logprob, bytes, top_logprobs). */
	private static ArrayNode logprobs(Dto.ChatLogprobs lp, boolean asked) {
		ArrayNode out = Sse.JSON.createArrayNode();
		if (asked && lp != null && lp.content() != null) {
			for (Object entry : lp.content()) {
				out.add(Sse.JSON.valueToTree(entry));
			}
		}
		return out;
	}

	/**
	 * The Responses stream of one chat stream: typed events, each with its sequence number. A failure after
	 * the stream started ends it with an {@code error} event, as OpenAI sends one.
	 */
	static Flux<DataBuffer> events(Request r, String id, long createdAt, String model, Flux<Dto.ChatChunk> chunks) {
		Stream s = new Stream(r, id, createdAt, model);
		return Flux.concat(Flux.defer(() -> Flux.fromIterable(s.start())),
				chunks.concatMapIterable(s::chunk),
				Flux.defer(() -> Flux.fromIterable(s.end())))
			.onErrorResume(e -> Flux.just(s.error(ApiErrorHandler.toApi(e))));
	}

	/** Turns chat chunks into Responses events: opens an item when its kind of output starts, closes it when the next begins. */
	private static final class Stream {

		private final Request r;

		private final String id;

		private final long createdAt;

		private final String model;

		private final ArrayNode output = Sse.JSON.createArrayNode();

		private int seq;

		/** The open item: "reasoning", "message", "function_call", or null. */
		private String open;

		private String itemId;

		private final StringBuilder text = new StringBuilder();

		private ArrayNode logprobs = Sse.JSON.createArrayNode();

		private String callId;

		private String callName;

		private String finish;

		private Dto.Usage usage;

		Stream(Request r, String id, long createdAt, String model) {
			this.r = r;
			this.id = id;
			this.createdAt = createdAt;
			this.model = model;
		}

		private DataBuffer event(String type, ObjectNode data) {
			ObjectNode e = Sse.JSON.createObjectNode().put("type", type);
			e.setAll(data);
			e.put("sequence_number", seq++);
			return Sse.typedEvent(type, e);
		}

		private ObjectNode node() {
			return Sse.JSON.createObjectNode();
		}

		List<DataBuffer> start() {
			ObjectNode inProgress = response(r, id, createdAt, model, "in_progress", null, Sse.JSON.createArrayNode(), null);
			return List.of(event("response.created", node().set("response", inProgress)),
					event("response.in_progress", node().set("response", inProgress.deepCopy())));
		}

		List<DataBuffer> chunk(Dto.ChatChunk c) {
			List<DataBuffer> out = new ArrayList<>();
			if (c.usage() != null && c.choices().isEmpty()) {
				usage = c.usage();
			}
			for (Dto.ChatChunkChoice choice : c.choices()) {
				Dto.Delta d = choice.delta();
				if (d.reasoningContent() != null && !d.reasoningContent().isEmpty()) {
					openItem("reasoning", out);
					text.append(d.reasoningContent());
					out.add(event("response.reasoning_text.delta", delta().put("content_index", 0)
						.put("delta", d.reasoningContent())));
				}
				if (d.role() == null && d.content() != null && !d.content().isEmpty()) {
					openItem("message", out);
					text.append(d.content());
					ArrayNode lp = logprobs(choice.logprobs(), r.logprobs());
					logprobs.addAll(lp);
					out.add(event("response.output_text.delta", delta().put("content_index", 0).put("delta", d.content())
						.set("logprobs", lp)));
				}
				else if (d.role() == null && "message".equals(open) && choice.logprobs() != null) {
					logprobs.addAll(logprobs(choice.logprobs(), r.logprobs())); // a token that adds no text yet
				}
				if (d.toolCalls() != null) {
					for (Dto.ToolCallDelta t : d.toolCalls()) {
						if (t.id() != null) {
							close(out);
							callId = t.id();
							callName = t.function().name();
							open("function_call", Api.id("fc_"), callItem("", callId, callName, "", "in_progress"), out);
						}
						String args = t.function() == null ? null : t.function().arguments();
						if (args != null && !args.isEmpty()) {
							text.append(args);
							out.add(event("response.function_call_arguments.delta", delta().put("delta", args)));
						}
					}
				}
				if (choice.finishReason() != null) {
					finish = choice.finishReason();
				}
			}
			return out;
		}

		private ObjectNode delta() {
			return node().put("item_id", itemId).put("output_index", output.size());
		}

		private void openItem(String kind, List<DataBuffer> out) {
			if (kind.equals(open)) {
				return;
			}
			close(out);
			if (kind.equals("reasoning")) {
				ObjectNode item = node().put("type", "reasoning").put("id", "");
				item.putArray("summary");
				item.putArray("content");
				open(kind, Api.id("rs_"), item, out);
			}
			else {
				open(kind, Api.id("msg_"), messageItem("", "in_progress", null, null), out);
				out.add(event("response.content_part.added", delta().put("content_index", 0)
					.set("part", textPart("", Sse.JSON.createArrayNode()))));
			}
		}

		private void open(String kind, String newId, ObjectNode item, List<DataBuffer> out) {
			open = kind;
			itemId = newId;
			item.put("id", newId);
			text.setLength(0);
			logprobs = Sse.JSON.createArrayNode();
			out.add(event("response.output_item.added", node().put("output_index", output.size()).set("item", item)));
		}

		/** Ends the open item: its done events, and the item joins the output. */
		private void close(List<DataBuffer> out) {
			if (open == null) {
				return;
			}
			String t = text.toString();
			ObjectNode item;
			switch (open) {
				case "reasoning" -> {
					out.add(event("response.reasoning_text.done", delta().put("content_index", 0).put("text", t)));
					item = reasoningItem(itemId, t);
				}
				case "message" -> {
					out.add(event("response.output_text.done", delta().put("content_index", 0).put("text", t)
						.set("logprobs", logprobs)));
					out.add(event("response.content_part.done", delta().put("content_index", 0)
						.set("part", textPart(t, logprobs))));
					item = messageItem(itemId, "completed", t, logprobs);
				}
				default -> {
					out.add(event("response.function_call_arguments.done", delta().put("name", callName).put("arguments", t)));
					item = callItem(itemId, callId, callName, t, "completed");
				}
			}
			out.add(event("response.output_item.done", node().put("output_index", output.size()).set("item", item)));
			output.add(item);
			open = null;
		}

		DataBuffer error(ApiException e) {
			ObjectNode data = node().put("code", e.code() != null ? e.code() : e.type()).put("message", e.getMessage());
			data.put("param", e.param());
			return event("error", data);
		}

		List<DataBuffer> end() {
			List<DataBuffer> out = new ArrayList<>();
			if (open == null && output.isEmpty()) {
				openItem("message", out); // nothing was said: an empty message, as the whole response has
			}
			close(out);
			String status = status(finish);
			ObjectNode done = response(r, id, createdAt, model, status, finish, output, usage);
			out.add(event(status.equals("completed") ? "response.completed" : "response.incomplete",
					node().set("response", done)));
			return out;
		}
	}
}
