package dev.blockserve.constraint;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import dev.blockserve.constraint.Grammar.Builder;
import dev.blockserve.constraint.Grammar.Bytes;
import dev.blockserve.constraint.Grammar.Rule;
import dev.blockserve.constraint.Grammar.Sym;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Compiles a JSON Schema (the subset OpenAI's strict mode and the Java clients generate) into grammar
 * rules whose every complete output is a JSON text valid under the schema. Objects list their
 * properties in the schema's order, required ones always and optional ones where the model chooses,
 * and no others; whitespace is bounded (nothing, one space, or a newline and up to 20 blanks between
 * tokens, as llama.cpp's grammars allow) so that a model cannot wander in blanks; numbers have at most
 * 16 integer digits, 15 fraction digits and 2 exponent digits (a double's range) for the same reason. A keyword outside
 * the subset is an error naming it and its place in the schema: never silently dropped.
 * Not thread-safe: one compile.
 */
public final class JsonSchemaCompiler {

	private static final JsonMapper JSON = JsonMapper.builder().build();

	/** Keywords that do not constrain the value (annotations), ignored. */
	private static final Set<String> ANNOTATIONS = Set.of("$schema", "$id", "$comment", "$anchor", "title",
			"description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$defs", "definitions");

	private static final Set<String> TYPES = Set.of("object", "array", "string", "number", "integer", "boolean", "null");

	/** The keywords this compiler implements. */
	private static final Set<String> SUPPORTED = Set.of("type", "properties", "required", "additionalProperties", "items",
			"enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minItems", "maxItems", "minLength", "maxLength", "pattern",
			"format");

	/**
	 * Number formats (Java types, as Spring AI's schemas carry them): int32 allows at most 9 digits and
	 * int64 18, so that the value always fits the client's type; float and double only annotate.
	 */
	private static final Set<String> NUMBER_FORMATS = Set.of("int32", "int64", "float", "double");

	private static final String DATE = "[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";

	private static final String TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";

	private static final Map<String, String> STRING_FORMATS = Map.of("date", DATE, "time", TIME, "date-time",
			DATE + "T" + TIME, "uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

	/** Bound on {@code minItems}/{@code maxItems}/{@code minLength}/{@code maxLength}: each is expanded into rules. */
	private static final int MAX_COUNT = 1000;

	private final Builder b;

	private final JsonNode root;

	private final Map<String, Rule> refs = new HashMap<>();

	private final List<Runnable> pendingRefs = new ArrayList<>();

	private Sym ws;

	private Sym stringRule;

	private Sym charRule;

	private Sym numberRule;

	private Sym integerRule;

	private Sym anyValue;

	private int counter;

	/** A compiler adding to {@code b} for the schema document {@code root} ({@code $ref}s resolve against it). */
	public JsonSchemaCompiler(Builder b, JsonNode root) {
		this.b = b;
		this.root = root;
	}

	/** A grammar for one JSON value valid under {@code schema}. */
	public static Grammar compile(JsonNode schema) {
		Builder b = new Builder();
		JsonSchemaCompiler c = new JsonSchemaCompiler(b, schema);
		Rule root = b.rule("root", List.of(c.value(schema, "#")));
		c.finish();
		return b.build(root, "json schema");
	}

	/** A grammar for any JSON object ({@code response_format: json_object}). */
	public static Grammar anyObjectGrammar() {
		Builder b = new Builder();
		JsonSchemaCompiler c = new JsonSchemaCompiler(b, null);
		Rule root = b.rule("root", List.of(c.anyObject()));
		return b.build(root, "json object");
	}

	/** Defines the rules of the {@code $ref}s met so far (call once all values are compiled). */
	public void finish() {
		while (!pendingRefs.isEmpty()) {
			Runnable r = pendingRefs.remove(pendingRefs.size() - 1);
			r.run();
		}
	}

	private String name(String what) {
		return what + "#" + (counter++);
	}

	// ---- shared pieces

	/** Optional whitespace: nothing, a space, or a newline with up to 20 spaces or tabs. */
	public Sym ws() {
		if (ws == null) {
			List<Sym> indent = b.repeat("indent", List.of(Bytes.of(' ', '\t')), 0, 20);
			ws = b.rule("ws", List.of(), Builder.literal(" "), Builder.seq("\n", indent));
		}
		return ws;
	}

	/** Any UTF-8 encoded character of two to four bytes (only well-formed sequences). */
	static Rule utf8Multibyte(Builder b) {
		Bytes cont = Bytes.range(0x80, 0xBF);
		return b.rule("utf8", List.of(Bytes.range(0xC2, 0xDF), cont),
				List.of(Bytes.of(0xE0), Bytes.range(0xA0, 0xBF), cont), List.of(Bytes.range(0xE1, 0xEC), cont, cont),
				List.of(Bytes.of(0xED), Bytes.range(0x80, 0x9F), cont), List.of(Bytes.range(0xEE, 0xEF), cont, cont),
				List.of(Bytes.of(0xF0), Bytes.range(0x90, 0xBF), cont, cont), List.of(Bytes.range(0xF1, 0xF3), cont, cont, cont),
				List.of(Bytes.of(0xF4), Bytes.range(0x80, 0x8F), cont, cont));
	}

	/** One character of a JSON string's inside: unescaped, multi-byte or an escape. */
	private Sym jsonChar() {
		if (charRule == null) {
			Bytes plain = Bytes.range(0x20, 0x7F).minus(Bytes.of('"', '\\'));
			Bytes hex = Bytes.range('0', '9').union(Bytes.range('a', 'f')).union(Bytes.range('A', 'F'));
			charRule = b.rule("char", List.of(plain), List.of(utf8Multibyte(b)),
					List.of(Bytes.of('\\'), Bytes.of('"', '\\', '/', 'b', 'f', 'n', 'r', 't')),
					List.of(Bytes.of('\\'), Bytes.of('u'), hex, hex, hex, hex));
		}
		return charRule;
	}

	public Sym string() {
		if (stringRule == null) {
			stringRule = b.rule("string", Builder.seq("\"", b.star("chars", List.of(jsonChar())), "\""));
		}
		return stringRule;
	}

	private List<Sym> digits(int min, int max) {
		return b.repeat(name("digits"), List.of(Bytes.range('0', '9')), min, max);
	}

	private Sym integer() {
		if (integerRule == null) {
			Rule intPart = b.rule("int", List.of(Bytes.of('0')), Builder.seq(Bytes.range('1', '9'), digits(0, 15)));
			integerRule = b.rule("integer", Builder.seq(b.optional("minus", Builder.literal("-")), intPart));
		}
		return integerRule;
	}

	/** An integer of at most {@code digits} digits (so that it fits a 32- or 64-bit type). */
	private Sym boundedInteger(int digits) {
		Rule intPart = b.rule(name("int"), List.of(Bytes.of('0')), Builder.seq(Bytes.range('1', '9'), digits(0, digits - 1)));
		return b.rule(name("integer"), Builder.seq(b.optional(name("minus"), Builder.literal("-")), intPart));
	}

	private Sym number() {
		if (numberRule == null) {
			Rule frac = b.optional("frac", Builder.seq(".", digits(1, 15)));
			Rule exp = b.optional("exp", Builder.seq(Bytes.of('e', 'E'), b.optional("sign", List.of(Bytes.of('-', '+'))),
					digits(1, 2)));
			numberRule = b.rule("number", Builder.seq(integer(), frac, exp));
		}
		return numberRule;
	}

	/** Any JSON value (recursive). */
	public Sym anyValue() {
		if (anyValue == null) {
			Rule v = b.declare("value");
			anyValue = v;
			Sym object = anyObject();
			Rule array = b.rule("array", Builder.seq("[", ws(),
					b.optional("elements", Builder.seq(v, b.star("more-elements", Builder.seq(",", ws(), v)), ws())), "]"));
			b.define(v, List.of(List.of(object), List.of(array), List.of(string()), List.of(number()),
					Builder.literal("true"), Builder.literal("false"), Builder.literal("null")));
		}
		return anyValue;
	}

	private Sym anyObject() {
		return mapOf(anyValue());
	}

	/** An object with any string keys and values of {@code value}. */
	private Sym mapOf(Sym value) {
		List<Sym> member = Builder.seq(string(), ":", ws(), value);
		return b.rule(name("map"), Builder.seq("{", ws(),
				b.optional(name("members"), Builder.seq(member, b.star(name("more-members"), Builder.seq(",", ws(), member)), ws())),
				"}"));
	}

	// ---- schemas

	private GrammarException unsupported(String keyword, String at) {
		return new GrammarException("JSON schema keyword '" + keyword + "' is not supported (at " + at + ")");
	}

	private static GrammarException invalid(String what, String at) {
		return new GrammarException("invalid JSON schema at " + at + ": " + what);
	}

	/** Symbols for one value valid under {@code s}, found at {@code at} (a JSON pointer, for messages). */
	public Sym value(JsonNode s, String at) {
		if (s.isBoolean()) {
			if (!s.asBoolean()) {
				throw invalid("schema 'false' allows no value", at);
			}
			return anyValue();
		}
		if (!s.isObject()) {
			throw invalid("a schema must be an object or a boolean", at);
		}
		for (String k : s.propertyNames()) {
			if (!SUPPORTED.contains(k) && !ANNOTATIONS.contains(k)) {
				throw unsupported(k, at);
			}
		}
		if (s.has("$ref")) {
			return ref(s.get("$ref").asString(""), at);
		}
		if (s.has("const")) {
			return b.rule(name("const"), Builder.literal(JSON.writeValueAsString(s.get("const"))));
		}
		if (s.has("enum")) {
			JsonNode e = s.get("enum");
			if (!e.isArray() || e.isEmpty()) {
				throw invalid("'enum' must be a non-empty array", at);
			}
			List<List<Sym>> alts = new ArrayList<>();
			for (JsonNode v : e) {
				alts.add(Builder.literal(JSON.writeValueAsString(v)));
			}
			return b.choice(name("enum"), alts);
		}
		for (String comb : new String[] { "anyOf", "oneOf" }) {
			if (s.has(comb)) {
				JsonNode list = s.get(comb);
				if (!list.isArray() || list.isEmpty()) {
					throw invalid("'" + comb + "' must be a non-empty array", at);
				}
				if (comb.equals("oneOf") && list.size() > 1) {
					// two branches may both match one output, which oneOf forbids: not guaranteed, so refused
					throw new GrammarException("JSON schema keyword 'oneOf' with more than one branch is not supported (at "
							+ at + "); use 'anyOf'");
				}
				List<List<Sym>> alts = new ArrayList<>();
				for (int k = 0; k < list.size(); k++) {
					alts.add(List.of(value(merged(s, list.get(k), comb), at + "/" + comb + "/" + k)));
				}
				return b.choice(name(comb), alts);
			}
		}
		if (s.has("allOf")) {
			JsonNode list = s.get("allOf");
			if (!list.isArray() || list.size() != 1) {
				throw new GrammarException("JSON schema keyword 'allOf' is supported with exactly one schema (at " + at + ")");
			}
			return value(merged(s, list.get(0), "allOf"), at + "/allOf/0");
		}
		JsonNode type = s.get("type");
		if (type == null) {
			if (s.has("properties") || s.has("additionalProperties")) {
				return object(s, at);
			}
			if (s.has("items") || s.has("minItems") || s.has("maxItems")) {
				return array(s, at);
			}
			if (s.has("pattern") || s.has("minLength") || s.has("maxLength") || s.has("format")) {
				return typed(s, "string", at);
			}
			return anyValue();
		}
		if (type.isString()) {
			return typed(s, type.asString(), at);
		}
		if (type.isArray() && !type.isEmpty()) {
			List<List<Sym>> alts = new ArrayList<>();
			Set<String> seen = new LinkedHashSet<>();
			for (JsonNode t : type) {
				if (!t.isString() || !seen.add(t.asString())) {
					throw invalid("'type' must hold distinct type names", at);
				}
				alts.add(List.of(typed(s, t.asString(), at)));
			}
			return b.choice(name("types"), alts);
		}
		throw invalid("'type' must be a type name or an array of them", at);
	}

	/** {@code branch} with the other keywords of {@code parent} (not the combinator) added where it lacks them. */
	private static JsonNode merged(JsonNode parent, JsonNode branch, String combinator) {
		if (!branch.isObject()) {
			return branch;
		}
		var out = JSON.createObjectNode();
		for (String k : parent.propertyNames()) {
			if (!k.equals(combinator) && !ANNOTATIONS.contains(k)) {
				out.set(k, parent.get(k));
			}
		}
		for (String k : branch.propertyNames()) {
			out.set(k, branch.get(k));
		}
		return out;
	}

	private Sym typed(JsonNode s, String type, String at) {
		if (!TYPES.contains(type)) {
			throw invalid("unknown type '" + type + "'", at);
		}
		return switch (type) {
			case "object" -> object(s, at);
			case "array" -> array(s, at);
			case "string" -> stringOf(s, at);
			case "number" -> {
				numberFormat(s, at);
				yield number();
			}
			case "integer" -> {
				numberFormat(s, at);
				String f = s.path("format").asString("");
				yield f.equals("int32") ? boundedInteger(9) : f.equals("int64") ? boundedInteger(18) : integer();
			}
			case "boolean" -> b.rule(name("boolean"), Builder.literal("true"), Builder.literal("false"));
			default -> b.rule(name("null"), Builder.literal("null"));
		};
	}

	private void numberFormat(JsonNode s, String at) {
		JsonNode f = s.get("format");
		if (f != null && !NUMBER_FORMATS.contains(f.asString(""))) {
			throw new GrammarException("JSON schema format '" + f.asString("") + "' is not supported for numbers (at " + at
					+ "); supported: " + NUMBER_FORMATS);
		}
	}

	private int count(JsonNode s, String key, int dflt, String at) {
		JsonNode n = s.get(key);
		if (n == null) {
			return dflt;
		}
		if (!n.isIntegralNumber() || n.asLong() < 0) {
			throw invalid("'" + key + "' must be a non-negative integer", at);
		}
		if (n.asLong() > MAX_COUNT) {
			throw new GrammarException("'" + key + "' above " + MAX_COUNT + " is not supported (at " + at + ")");
		}
		return n.asInt();
	}

	private Sym stringOf(JsonNode s, String at) {
		int min = count(s, "minLength", 0, at);
		int max = count(s, "maxLength", -1, at);
		if (max >= 0 && max < min) {
			throw invalid("'maxLength' is below 'minLength'", at);
		}
		String regex = null;
		if (s.has("format")) {
			String f = s.get("format").asString("");
			regex = STRING_FORMATS.get(f);
			if (regex == null) {
				throw new GrammarException("JSON schema format '" + f + "' is not supported (at " + at + "); supported: "
						+ STRING_FORMATS.keySet());
			}
		}
		if (s.has("pattern")) {
			if (regex != null) {
				throw new GrammarException("'pattern' together with 'format' is not supported (at " + at + ")");
			}
			if (!s.get("pattern").isString()) {
				throw invalid("'pattern' must be a string", at);
			}
			regex = s.get("pattern").asString();
		}
		if (regex != null) {
			if (min > 0 || max >= 0) {
				throw new GrammarException("'minLength'/'maxLength' together with 'pattern' or 'format' is not supported (at "
						+ at + ")");
			}
			return b.rule(name("pattern"), Builder.seq("\"", RegexCompiler.sequence(b, regex, true), "\""));
		}
		if (min == 0 && max < 0) {
			return string();
		}
		return b.rule(name("string"), Builder.seq("\"", b.repeat(name("chars"), List.of(jsonChar()), min, max), "\""));
	}

	private Sym array(JsonNode s, String at) {
		for (String k : new String[] { "properties", "required", "additionalProperties" }) {
			if (s.has(k) && !s.has("type")) {
				throw invalid("'" + k + "' beside array keywords without a type", at);
			}
		}
		Sym item = s.has("items") ? value(s.get("items"), at + "/items") : anyValue();
		int min = count(s, "minItems", 0, at);
		int max = count(s, "maxItems", -1, at);
		if (max >= 0 && max < min) {
			throw invalid("'maxItems' is below 'minItems'", at);
		}
		if (max == 0) {
			return b.rule(name("empty-array"), Builder.seq("[", ws(), "]"));
		}
		List<Sym> more = Builder.seq(",", ws(), item);
		List<Sym> rest = b.repeat(name("items"), more, Math.max(0, min - 1), max < 0 ? -1 : max - 1);
		List<Sym> elements = Builder.seq(item, rest, ws());
		return b.rule(name("array"), Builder.seq("[", ws(), min > 0 ? elements : List.of(b.optional(name("elements"), elements)),
				"]"));
	}

	private Sym object(JsonNode s, String at) {
		JsonNode props = s.get("properties");
		JsonNode additional = s.get("additionalProperties");
		Set<String> required = new LinkedHashSet<>();
		if (s.has("required")) {
			if (!s.get("required").isArray()) {
				throw invalid("'required' must be an array of property names", at);
			}
			for (JsonNode r : s.get("required")) {
				required.add(r.asString(""));
			}
		}
		if (props == null || props.isEmpty()) {
			if (!required.isEmpty()) {
				throw invalid("'required' names " + required + " but 'properties' does not define them", at);
			}
			if (additional == null || (additional.isBoolean() && additional.asBoolean())) {
				return anyObject();
			}
			if (additional.isBoolean()) {
				return b.rule(name("empty-object"), Builder.seq("{", ws(), "}"));
			}
			return mapOf(value(additional, at + "/additionalProperties"));
		}
		if (!props.isObject()) {
			throw invalid("'properties' must be an object", at);
		}
		for (String r : required) {
			if (!props.has(r)) {
				throw invalid("'required' names '" + r + "', which 'properties' does not define", at);
			}
		}
		// extra properties are allowed by a true/absent additionalProperties but never generated
		List<String> names = new ArrayList<>(props.propertyNames());
		List<List<Sym>> members = new ArrayList<>();
		for (String k : names) {
			members.add(Builder.seq(JSON.writeValueAsString(k), ":", ws(), value(props.get(k), at + "/properties/" + k)));
		}
		// after(i, first): the members from i on; "first" when none has been written yet (no comma before)
		Sym[][] after = new Sym[names.size() + 1][2];
		after[names.size()][0] = null;
		after[names.size()][1] = null;
		for (int i = names.size() - 1; i >= 0; i--) {
			for (int first = 0; first < 2; first++) {
				List<Sym> with = new ArrayList<>();
				if (first == 0) {
					with.addAll(Builder.seq(",", ws()));
				}
				with.addAll(members.get(i));
				if (after[i + 1][0] != null) {
					with.add(after[i + 1][0]);
				}
				boolean req = required.contains(names.get(i));
				List<List<Sym>> alts = new ArrayList<>();
				alts.add(with);
				if (!req) {
					Sym skip = after[i + 1][first];
					alts.add(skip == null ? List.of() : List.of(skip));
				}
				after[i][first] = b.choice(name("members"), alts);
			}
		}
		return b.rule(name("object"), Builder.seq("{", ws(), after[0][1], ws(), "}"));
	}

	private Sym ref(String ref, String at) {
		Rule r = refs.get(ref);
		if (r != null) {
			return r;
		}
		if (root == null || !ref.startsWith("#")) {
			throw new GrammarException("'$ref' " + ref + " is not supported (at " + at + "): only references inside the schema ('#/...')");
		}
		JsonNode target = ref.equals("#") ? root : root.at(ref.substring(1));
		if (target == null || target.isMissingNode()) {
			throw invalid("'$ref' " + ref + " points at nothing", at);
		}
		Rule rule = b.declare("ref " + ref);
		refs.put(ref, rule);
		pendingRefs.add(() -> b.define(rule, List.of(List.of(value(target, ref)))));
		return rule;
	}
}
