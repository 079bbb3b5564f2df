package dev.blockserve.toolcall;

import java.util.ArrayList;
import java.util.List;

import dev.blockserve.constraint.Grammar;
import dev.blockserve.constraint.Grammar.Builder;
import dev.blockserve.constraint.Grammar.Sym;
import dev.blockserve.constraint.JsonSchemaCompiler;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The grammars that force a valid call, as vLLM builds them: for a named function the output is its
 * arguments object; for {@code tool_choice: required} it is a JSON array of
 * {@code {"name": "<one of the functions>", "parameters": <that function's arguments>}}, with one element
 * when {@code parallel_tool_calls} is false. Stateless.
 */
public final class ToolGrammars {

	private static final JsonMapper JSON = JsonMapper.builder().build();

	private ToolGrammars() {
	}

	/** A function the request offers: its name and its parameters schema (null: no parameters). */
	public record Function(String name, JsonNode parameters) {

		public JsonNode schema() {
			if (parameters == null || parameters.isNull()) {
				return JSON.readTree("{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}");
			}
			return parameters;
		}
	}

	public static Grammar named(Function f) {
		return JsonSchemaCompiler.compile(f.schema());
	}

	public static Grammar required(List<Function> functions, boolean parallel) {
		Builder b = new Builder();
		JsonSchemaCompiler shared = new JsonSchemaCompiler(b, null);
		Sym ws = shared.ws();
		List<List<Sym>> alts = new ArrayList<>();
		for (Function f : functions) {
			// each function's schema is its own document: its $refs resolve inside it
			JsonSchemaCompiler c = new JsonSchemaCompiler(b, f.schema());
			Sym params = c.value(f.schema(), "#/tools/" + f.name() + "/parameters");
			c.finish();
			alts.add(Builder.seq(JSON.writeValueAsString(f.name()), ",", ws, "\"parameters\":", ws, params));
		}
		Sym call = b.rule("call", Builder.seq("{", ws, "\"name\":", ws, b.choice("function", alts), ws, "}"));
		List<Sym> more = parallel ? List.of(b.star("more-calls", Builder.seq(",", ws, call))) : List.of();
		Grammar.Rule root = b.rule("root", Builder.seq("[", ws, call, more, ws, "]"));
		return b.build(root, "tool calls");
	}
}
