package dev.blockserve.toolcall;

import java.util.ArrayList;
import java.util.List;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Splits one choice's generated text into content and tool calls as the text arrives, so the same code
 * serves streaming (each piece becomes a delta) and whole responses (the pieces are joined).
 * Modes: a named function ({@code tool_choice} names one: the text is its arguments), the JSON array that
 * {@code tool_choice: required} constrains the output to ({@code [{"name", "parameters"}, ...]}), and
 * the families' own formats for {@code auto} ({@link ToolCallFormat}). Text that might still become a
 * call's opening marker is held back until it is clear; a call that does not parse is given back as
 * content. One per choice; used by one thread at a time.
 */
public final class ToolCallStream {

	private static final JsonMapper JSON = JsonMapper.builder().build();


	private static final String HERMES_OPEN = "<tool_call>";

	private static final String HERMES_CLOSE = "</tool_call>";

	private static final String MISTRAL_MARK = "[TOOL_CALLS]";

	/** A piece of the output: content text, a call's start (id, name, first arguments) or more arguments. */
	public sealed interface Piece permits Content, CallStart, Arguments {
	}

	public record Content(String text) implements Piece {
	}

	public record CallStart(int index, String id, String name, String arguments) implements Piece {
	}

	public record Arguments(int index, String delta) implements Piece {
	}

	private enum Mode {
		NAMED, ARRAY, AUTO
	}

	private final Mode mode;

	private final ToolCallFormat format;

	private final String function;

	private final StringBuilder pending = new StringBuilder();

	private int calls;

	private boolean inside;

	/** AUTO with LLAMA3_JSON or MISTRAL: whether the answer (so far blank) turned out to be calls. */
	private Boolean bulk;

	// ARRAY mode: a scan of the JSON text for the elements of the top-level array
	private final JsonDepth scan = new JsonDepth();

	private int elementStart = -1;

	private ToolCallStream(Mode mode, ToolCallFormat format, String function) {
		this.mode = mode;
		this.format = format;
		this.function = function;
	}

	/** The output is the arguments of {@code function}. */
	public static ToolCallStream named(String function, ToolCallFormat format) {
		return new ToolCallStream(Mode.NAMED, format, function);
	}

	/** The output is a JSON array of {@code {"name", "parameters"}} objects. */
	public static ToolCallStream array(ToolCallFormat format) {
		return new ToolCallStream(Mode.ARRAY, format, null);
	}

	/** Free text in which the model may write calls its family's way. */
	public static ToolCallStream auto(ToolCallFormat format) {
		return new ToolCallStream(Mode.AUTO, format, null);
	}

	public int calls() {
		return calls;
	}

	/** The pieces {@code delta} completes. */
	public List<Piece> push(String delta) {
		List<Piece> out = new ArrayList<>();
		switch (mode) {
			case NAMED -> {
				if (calls == 0) {
					calls = 1;
					out.add(new CallStart(0, format.newId(), function, delta));
				}
				else if (!delta.isEmpty()) {
					out.add(new Arguments(0, delta));
				}
			}
			case ARRAY -> scanArray(delta, out);
			case AUTO -> {
				pending.append(delta);
				if (format == ToolCallFormat.HERMES) {
					hermes(out, false);
				}
				else {
					bulk(out);
				}
			}
		}
		return out;
	}

	/** What is left once the text has ended. */
	public List<Piece> finish() {
		List<Piece> out = new ArrayList<>();
		if (mode == Mode.NAMED && calls == 0) {
			calls = 1;
			out.add(new CallStart(0, format.newId(), function, ""));
		}
		if (mode != Mode.AUTO) {
			return out;
		}
		if (format == ToolCallFormat.HERMES) {
			hermes(out, true);
		}
		else if (Boolean.TRUE.equals(bulk)) {
			List<Piece> parsed = format == ToolCallFormat.MISTRAL ? mistral(pending.toString()) : llama(pending.toString());
			if (parsed == null) {
				content(out, pending.toString());
			}
			else {
				out.addAll(parsed);
			}
		}
		else {
			content(out, pending.toString());
		}
		pending.setLength(0);
		return out;
	}

	private void content(List<Piece> out, String text) {
		if (!text.isEmpty() && !(calls > 0 && text.isBlank())) {
			out.add(new Content(text));
		}
	}

	/**
	 * Tracks how deep a JSON text nests, character by character, ignoring brackets inside strings (with
	 * their escapes). {@link #step} returns the character's kind: an opening or closing bracket outside a
	 * string, or anything else.
	 */
	static final class JsonDepth {

		static final int OTHER = 0;

		static final int OPEN = 1;

		static final int CLOSE = 2;

		int depth;

		private boolean inString;

		private boolean escaped;

		int step(char c) {
			if (inString) {
				if (escaped) {
					escaped = false;
				}
				else if (c == '\\') {
					escaped = true;
				}
				else if (c == '"') {
					inString = false;
				}
				return OTHER;
			}
			if (c == '"') {
				inString = true;
			}
			else if (c == '{' || c == '[') {
				depth++;
				return OPEN;
			}
			else if (c == '}' || c == ']') {
				depth--;
				return CLOSE;
			}
			return OTHER;
		}
	}

	private void scanArray(String delta, List<Piece> out) {
		int base = pending.length();
		pending.append(delta);
		for (int i = base; i < pending.length(); i++) {
			char c = pending.charAt(i);
			int kind = scan.step(c);
			if (kind == JsonDepth.OPEN && scan.depth == 2 && c == '{') {
				elementStart = i;
			}
			else if (kind == JsonDepth.CLOSE && scan.depth == 1 && c == '}' && elementStart >= 0) {
				JsonNode call = JSON.readTree(pending.substring(elementStart, i + 1));
				JsonNode args = call.has("parameters") ? call.get("parameters") : call.path("arguments");
				out.add(new CallStart(calls++, format.newId(), call.path("name").asString(""), JSON.writeValueAsString(args)));
				elementStart = -1;
			}
		}
	}

	/** Hermes: content streams up to a possible opening tag; each closed block becomes a call. */
	private void hermes(List<Piece> out, boolean end) {
		while (true) {
			if (!inside) {
				int open = pending.indexOf(HERMES_OPEN);
				if (open >= 0) {
					content(out, pending.substring(0, open));
					pending.delete(0, open + HERMES_OPEN.length());
					inside = true;
					continue;
				}
				int keep = end ? 0 : partialSuffix(pending, HERMES_OPEN);
				content(out, pending.substring(0, pending.length() - keep));
				pending.delete(0, pending.length() - keep);
				return;
			}
			int close = pending.indexOf(HERMES_CLOSE);
			if (close < 0 && !end) {
				return;
			}
			String body = close >= 0 ? pending.substring(0, close) : pending.toString();
			CallStart call = callFrom(body, "arguments");
			if (call == null) {
				content(out, HERMES_OPEN + body + (close >= 0 ? HERMES_CLOSE : ""));
			}
			else {
				out.add(call);
			}
			pending.delete(0, close >= 0 ? close + HERMES_CLOSE.length() : pending.length());
			inside = false;
			if (close < 0) {
				return;
			}
		}
	}

	/**
	 * Llama 3 / Mistral: the first visible characters decide whether the answer is calls (held and parsed
	 * once the text ends) or content (streamed; for Mistral, up to a later [TOOL_CALLS] marker).
	 */
	private void bulk(List<Piece> out) {
		boolean mistral = format == ToolCallFormat.MISTRAL;
		if (bulk == null) {
			String t = pending.toString().stripLeading();
			if (t.isEmpty()) {
				return;
			}
			String[] starts = mistral ? new String[] { MISTRAL_MARK, "[" } : new String[] { "<|python_tag|>", "{" };
			boolean calls = false;
			for (String s : starts) {
				if (s.startsWith(t) && t.length() < s.length()) {
					return; // not yet clear
				}
				calls |= t.startsWith(s);
			}
			if (mistral && !calls) {
				if (t.matches("[A-Za-z0-9_\\-]+(\\[[A-Z\\]]*)?")) {
					return; // a bare name may be followed by [ARGS] or '{'
				}
				calls = t.matches("(?s)[A-Za-z0-9_\\-]+(\\[ARGS\\])?\\s*\\{.*");
			}
			bulk = calls;
		}
		if (bulk) {
			return;
		}
		int keep = 0;
		if (mistral) {
			int mark = pending.indexOf(MISTRAL_MARK);
			if (mark >= 0) {
				content(out, pending.substring(0, mark));
				pending.delete(0, mark);
				bulk = true;
				return;
			}
			keep = partialSuffix(pending, MISTRAL_MARK);
		}
		content(out, pending.substring(0, pending.length() - keep));
		pending.delete(0, pending.length() - keep);
	}

	private CallStart callFrom(String json, String argsKey) {
		try {
			JsonNode n = JSON.readTree(json.strip());
			return callFrom(n, argsKey);
		}
		catch (RuntimeException e) {
			return null;
		}
	}

	private CallStart callFrom(JsonNode n, String argsKey) {
		if (n == null || !n.isObject() || !n.path("name").isString()) {
			return null;
		}
		JsonNode args = n.has(argsKey) ? n.get(argsKey) : n.has("parameters") ? n.get("parameters") : n.get("arguments");
		if (args == null) {
			args = JSON.createObjectNode();
		}
		String text = args.isString() ? args.asString() : JSON.writeValueAsString(args);
		return new CallStart(calls++, format.newId(), n.get("name").asString(), text);
	}

	/** Llama 3: one or more objects, separated by ';' (or blanks), after an optional python tag. */
	private List<Piece> llama(String text) {
		String t = text.strip();
		if (t.startsWith("<|python_tag|>")) {
			t = t.substring("<|python_tag|>".length()).strip();
		}
		List<Piece> out = new ArrayList<>();
		int saved = calls;
		for (String part : topLevelObjects(t)) {
			CallStart c = part == null ? null : callFrom(part, "parameters");
			if (c == null) {
				calls = saved;
				return null;
			}
			out.add(c);
		}
		return out.isEmpty() ? null : out;
	}

	/**
	 * The top-level objects of {@code t}, which may be separated by ';' or blanks; a null element when
	 * anything else stands between them or the last is not closed.
	 */
	private static List<String> topLevelObjects(String t) {
		List<String> out = new ArrayList<>();
		JsonDepth scan = new JsonDepth();
		int start = -1;
		for (int i = 0; i < t.length(); i++) {
			char c = t.charAt(i);
			if (scan.depth == 0 && c != '{') {
				if (c != ';' && !Character.isWhitespace(c)) {
					out.add(null); // text between calls: not a list of calls
					return out;
				}
				continue;
			}
			int kind = scan.step(c);
			if (kind == JsonDepth.OPEN && scan.depth == 1) {
				start = i;
			}
			else if (kind == JsonDepth.CLOSE && scan.depth == 0) {
				out.add(t.substring(start, i + 1));
			}
		}
		if (scan.depth != 0) {
			out.add(null);
		}
		return out;
	}

	/** Mistral: an array of calls, or name[ARGS]{...} (tokenizer v11), after an optional marker. */
	private List<Piece> mistral(String text) {
		String t = text.strip();
		List<Piece> out = new ArrayList<>();
		int saved = calls;
		while (t.startsWith(MISTRAL_MARK)) {
			t = t.substring(MISTRAL_MARK.length()).strip();
			if (t.startsWith("[")) {
				try {
					JsonNode arr = JSON.readTree(t);
					for (JsonNode c : arr) {
						CallStart call = callFrom(c, "arguments");
						if (call == null) {
							calls = saved;
							return null;
						}
						out.add(call);
					}
					return out.isEmpty() ? null : out;
				}
				catch (RuntimeException e) {
					calls = saved;
					return null;
				}
			}
			int next = t.indexOf(MISTRAL_MARK);
			String one = next < 0 ? t : t.substring(0, next);
			t = next < 0 ? "" : t.substring(next);
			CallStart call = namedArgs(one);
			if (call == null) {
				calls = saved;
				return null;
			}
			out.add(call);
		}
		if (!t.isEmpty()) {
			if (t.startsWith("[")) {
				return mistral(MISTRAL_MARK + t);
			}
			CallStart call = namedArgs(t);
			if (call == null) {
				calls = saved;
				return null;
			}
			out.add(call);
		}
		return out.isEmpty() ? null : out;
	}

	/** {@code name[ARGS]{...}} or, with the control token skipped, {@code name{...}}. */
	private CallStart namedArgs(String s) {
		int brace = s.indexOf('{');
		if (brace <= 0) {
			return null;
		}
		String name = s.substring(0, brace).replace("[ARGS]", "").strip();
		if (!name.matches("[A-Za-z0-9_\\-.]+")) {
			return null;
		}
		try {
			JsonNode args = JSON.readTree(s.substring(brace).strip());
			if (!args.isObject()) {
				return null;
			}
			return new CallStart(calls++, format.newId(), name, JSON.writeValueAsString(args));
		}
		catch (RuntimeException e) {
			return null;
		}
	}

	/** The length of the longest suffix of {@code sb} that is a proper prefix of {@code marker}. */
	private static int partialSuffix(StringBuilder sb, String marker) {
		int max = Math.min(sb.length(), marker.length() - 1);
		for (int k = max; k > 0; k--) {
			if (sb.substring(sb.length() - k).equals(marker.substring(0, k))) {
				return k;
			}
		}
		return 0;
	}
}
