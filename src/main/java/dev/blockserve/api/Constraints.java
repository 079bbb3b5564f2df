package dev.blockserve.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.blockserve.constraint.ChoiceGrammar;
import dev.blockserve.constraint.Grammar;
import dev.blockserve.constraint.GrammarCache;
import dev.blockserve.constraint.GrammarException;
import dev.blockserve.constraint.JsonSchemaCompiler;
import dev.blockserve.constraint.RegexCompiler;
import dev.blockserve.toolcall.ToolCallFormat;
import dev.blockserve.toolcall.ToolCallStream;
import dev.blockserve.toolcall.ToolGrammars;
import tools.jackson.databind.JsonNode;

/**
 * Reads what shapes a request's output: OpenAI's {@code response_format} (text, json_object,
 * json_schema), vLLM's {@code guided_json}/{@code guided_regex}/{@code guided_choice} (or the same fields
 * under {@code structured_outputs}), and for chat {@code tools} with {@code tool_choice} and
 * {@code parallel_tool_calls}. Each wrong value is a 400 naming the field; a schema keyword outside the
 * supported subset is a 400 naming the keyword. Compiled grammars are cached by their source text.
 * Stateless apart from the thread-safe cache.
 */
final class Constraints {

	private final GrammarCache cache = new GrammarCache(128);

	/** How a chat request's tools are used; null from {@link #tools} when there are none (or choice none). */
	record Tools(Mode mode, List<ToolGrammars.Function> functions, String named, boolean parallel,
			ToolCallFormat format) {

		enum Mode {
			AUTO, REQUIRED, NAMED
		}

		/** A fresh splitter of one choice's text into content and calls. */
		ToolCallStream stream() {
			return switch (mode) {
				case AUTO -> ToolCallStream.auto(format);
				case REQUIRED -> ToolCallStream.array(format);
				case NAMED -> ToolCallStream.named(named, format);
			};
		}
	}

	/** The grammar that {@code response_format} or the guided fields ask for; null for free text. */
	Grammar output(JsonNode body) {
		List<String> asked = new ArrayList<>();
		Grammar g = null;
		JsonNode rf = body.get("response_format");
		if (rf != null && !rf.isNull()) {
			g = responseFormat(rf);
			if (g != null) {
				asked.add("response_format");
			}
		}
		Map<String, JsonNode> guided = new LinkedHashMap<>();
		for (String k : new String[] { "json", "regex", "choice", "grammar" }) {
			JsonNode v = body.get("guided_" + k);
			if (v != null && !v.isNull()) {
				guided.put("guided_" + k, v);
			}
		}
		JsonNode so = body.get("structured_outputs");
		if (so != null && !so.isNull()) {
			if (!so.isObject()) {
				throw ApiException.badRequest("'structured_outputs' must be an object", "structured_outputs");
			}
			for (String k : so.propertyNames()) {
				if (!List.of("json", "regex", "choice", "grammar", "json_object").contains(k)) {
					throw ApiException.badRequest("'structured_outputs." + k + "' is not supported; use json, regex, choice or json_object",
							"structured_outputs");
				}
				JsonNode v = so.get(k);
				if (v != null && !v.isNull() && !(k.equals("json_object") && v.isBoolean() && !v.asBoolean())) {
					guided.put("structured_outputs." + k, v);
				}
			}
		}
		for (Map.Entry<String, JsonNode> e : guided.entrySet()) {
			asked.add(e.getKey());
			g = guided(e.getKey(), e.getValue());
		}
		if (asked.size() > 1) {
			throw ApiException.badRequest("only one of response_format, guided_json, guided_regex, guided_choice and "
					+ "structured_outputs may shape the output, got " + asked, asked.get(1));
		}
		return g;
	}

	private Grammar responseFormat(JsonNode rf) {
		String type = rf.path("type").asString("");
		switch (type) {
			case "text":
				return null;
			case "json_object":
				return cache.get("json_object", JsonSchemaCompiler::anyObjectGrammar);
			case "json_schema": {
				JsonNode js = rf.get("json_schema");
				if (js == null || !js.isObject()) {
					throw ApiException.badRequest("'response_format.json_schema' must be an object with 'name' and 'schema'",
							"response_format");
				}
				JsonNode schema = js.get("schema");
				if (schema == null || schema.isNull()) {
					return cache.get("json_object", JsonSchemaCompiler::anyObjectGrammar);
				}
				return schema(schema, "response_format");
			}
			default:
				throw ApiException.badRequest("'response_format.type' must be text, json_object or json_schema, got '" + type
						+ "'", "response_format");
		}
	}

	private Grammar guided(String field, JsonNode v) {
		String kind = field.startsWith("guided_") ? field.substring("guided_".length()) : field.substring(field.indexOf('.') + 1);
		switch (kind) {
			case "json": {
				JsonNode schema = v;
				if (v.isString()) {
					try {
						schema = Api.JSON.readTree(v.asString());
					}
					catch (RuntimeException e) {
						throw ApiException.badRequest("'" + field + "' is not valid JSON", field);
					}
				}
				return schema(schema, field);
			}
			case "json_object":
				return cache.get("json_object", JsonSchemaCompiler::anyObjectGrammar);
			case "regex": {
				if (!v.isString()) {
					throw ApiException.badRequest("'" + field + "' must be a string", field);
				}
				String re = v.asString();
				return compile("regex:" + re, () -> RegexCompiler.compile(re), field);
			}
			case "choice": {
				if (!v.isArray() || v.isEmpty()) {
					throw ApiException.badRequest("'" + field + "' must be a non-empty array of strings", field);
				}
				List<String> choices = new ArrayList<>();
				for (JsonNode c : v) {
					if (!c.isString()) {
						throw ApiException.badRequest("'" + field + "' must be a non-empty array of strings", field);
					}
					choices.add(c.asString());
				}
				return compile("choice:" + Api.JSON.writeValueAsString(choices), () -> ChoiceGrammar.of(choices), field);
			}
			default:
				throw ApiException.badRequest("'" + field + "' (a grammar in EBNF) is not supported; use a JSON schema, a regex or "
						+ "a choice list", field);
		}
	}

	private Grammar schema(JsonNode schema, String field) {
		if (!schema.isObject() && !schema.isBoolean()) {
			throw ApiException.badRequest("the JSON schema in '" + field + "' must be an object", field);
		}
		return compile("schema:" + Api.JSON.writeValueAsString(schema), () -> JsonSchemaCompiler.compile(schema), field);
	}

	private Grammar compile(String key, java.util.function.Supplier<Grammar> f, String field) {
		try {
			return cache.get(key, f);
		}
		catch (GrammarException e) {
			throw ApiException.badRequest(e.getMessage(), field);
		}
	}

	/** The request's tools and how to use them; null without tools or with {@code tool_choice: none}. */
	Tools tools(JsonNode body, ToolCallFormat format) {
		JsonNode tools = body.get("tools");
		JsonNode choice = body.get("tool_choice");
		boolean hasTools = tools != null && !tools.isNull();
		if (!hasTools) {
			if (choice != null && !choice.isNull() && !"none".equals(choice.asString(""))) {
				throw ApiException.badRequest("'tool_choice' needs 'tools'", "tool_choice");
			}
			return null;
		}
		if (!tools.isArray()) {
			throw ApiException.badRequest("'tools' must be an array", "tools");
		}
		List<ToolGrammars.Function> functions = new ArrayList<>();
		for (int i = 0; i < tools.size(); i++) {
			JsonNode t = tools.get(i);
			JsonNode f = t.path("function");
			if (!"function".equals(t.path("type").asString("")) || !f.isObject()) {
				throw ApiException.badRequest("tools[" + i + "] must be {\"type\": \"function\", \"function\": {...}}", "tools");
			}
			if (!f.path("name").isString() || f.path("name").asString().isEmpty()) {
				throw ApiException.badRequest("tools[" + i + "].function.name must be a non-empty string", "tools");
			}
			JsonNode params = f.get("parameters");
			if (params != null && !params.isNull() && !params.isObject()) {
				throw ApiException.badRequest("tools[" + i + "].function.parameters must be a JSON schema object", "tools");
			}
			functions.add(new ToolGrammars.Function(f.path("name").asString(), params));
		}
		boolean parallel = RequestParser.optBool(body, "parallel_tool_calls", true);
		if (choice == null || choice.isNull() || "auto".equals(choice.asString(""))) {
			return functions.isEmpty() ? null : new Tools(Tools.Mode.AUTO, functions, null, parallel, format);
		}
		if (choice.isString()) {
			switch (choice.asString()) {
				case "none":
					return null;
				case "required":
					if (functions.isEmpty()) {
						throw ApiException.badRequest("'tool_choice' is 'required' but 'tools' is empty", "tool_choice");
					}
					return new Tools(Tools.Mode.REQUIRED, functions, null, parallel, format);
				default:
					throw ApiException.badRequest("'tool_choice' must be none, auto, required or {\"type\": \"function\", "
							+ "\"function\": {\"name\": ...}}, got '" + choice.asString() + "'", "tool_choice");
			}
		}
		String name = choice.path("function").path("name").asString("");
		if (!choice.isObject() || !"function".equals(choice.path("type").asString("")) || name.isEmpty()) {
			throw ApiException.badRequest("'tool_choice' must be none, auto, required or {\"type\": \"function\", "
					+ "\"function\": {\"name\": ...}}", "tool_choice");
		}
		for (ToolGrammars.Function f : functions) {
			if (f.name().equals(name)) {
				return new Tools(Tools.Mode.NAMED, functions, name, parallel, format);
			}
		}
		throw ApiException.badRequest("'tool_choice' names function '" + name + "', which is not in 'tools'", "tool_choice");
	}

	/** The grammar tools force (required or named); null for auto. */
	Grammar toolGrammar(Tools t) {
		try {
			return switch (t.mode()) {
				case AUTO -> null;
				case NAMED -> {
					ToolGrammars.Function f = t.functions().stream().filter(x -> x.name().equals(t.named())).findFirst().orElseThrow();
					yield cache.get("named:" + Api.JSON.writeValueAsString(f.schema()), () -> ToolGrammars.named(f));
				}
				case REQUIRED -> {
					StringBuilder key = new StringBuilder("required:" + t.parallel());
					for (ToolGrammars.Function f : t.functions()) {
						key.append('\n').append(f.name()).append('\t').append(Api.JSON.writeValueAsString(f.schema()));
					}
					yield cache.get(key.toString(), () -> ToolGrammars.required(t.functions(), t.parallel()));
				}
			};
		}
		catch (GrammarException e) {
			throw ApiException.badRequest(e.getMessage(), "tools");
		}
	}
}
