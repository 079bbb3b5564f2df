package dev.blockserve.constraint;

import java.util.ArrayList;
import java.util.List;

import dev.blockserve.constraint.Grammar.Builder;
import dev.blockserve.constraint.Grammar.Bytes;
import dev.blockserve.constraint.Grammar.Sym;

/**
 * Compiles a regular expression (the common subset: literals, escapes, classes, {@code .}, groups,
 * alternation, the quantifiers {@code ? * + {m} {m,} {m,n}}, anchors at the ends) into grammar rules over
 * UTF-8 bytes. The whole output matches the expression. In JSON-string mode the text is the inside of a
 * JSON string literal, so a quote, a backslash or a control character the expression allows is written
 * as its escape. What the subset lacks (backreferences, lookaround, {@code \b}, non-ASCII ranges) is an
 * error naming it. Not thread-safe: one compile.
 */
public final class RegexCompiler {

	/** Repetition bound: {m,n} is expanded into rules, so its size must stay reasonable. */
	private static final int MAX_REPEAT = 1000;

	private final Builder b;

	private final String src;

	private final boolean jsonString;

	private int i;

	private int rules;

	private Sym utf8;

	private RegexCompiler(Builder b, String src, boolean jsonString) {
		this.b = b;
		this.src = src;
		this.jsonString = jsonString;
	}

	/** The whole output matches {@code regex}. */
	public static Grammar compile(String regex) {
		Builder b = new Builder();
		Grammar.Rule root = b.rule("root", sequence(b, regex, false));
		return b.build(root, "regex " + regex);
	}

	/** Symbols matching {@code regex}, added to {@code b}; {@code jsonString} as above. */
	public static List<Sym> sequence(Builder b, String regex, boolean jsonString) {
		String r = regex;
		if (r.startsWith("^")) {
			r = r.substring(1);
		}
		if (r.endsWith("$") && !r.endsWith("\\$")) {
			r = r.substring(0, r.length() - 1);
		}
		RegexCompiler c = new RegexCompiler(b, r, jsonString);
		List<Sym> out = c.alternation();
		if (c.i < r.length()) {
			throw c.error("unexpected '" + r.charAt(c.i) + "'");
		}
		return out;
	}

	private GrammarException error(String what) {
		return new GrammarException("regex /" + src + "/: " + what + " at position " + i);
	}

	private String name() {
		return "re" + (rules++);
	}

	private boolean more() {
		return i < src.length();
	}

	private List<Sym> alternation() {
		List<List<Sym>> alts = new ArrayList<>();
		alts.add(concatenation());
		while (more() && src.charAt(i) == '|') {
			i++;
			alts.add(concatenation());
		}
		if (alts.size() == 1) {
			return alts.get(0);
		}
		return List.of(b.choice(name(), alts));
	}

	private List<Sym> concatenation() {
		List<Sym> out = new ArrayList<>();
		while (more() && src.charAt(i) != '|' && src.charAt(i) != ')') {
			List<Sym> atom = atom();
			out.addAll(quantified(atom));
		}
		return out;
	}

	private List<Sym> quantified(List<Sym> atom) {
		if (!more()) {
			return atom;
		}
		char c = src.charAt(i);
		int min;
		int max;
		if (c == '?') {
			min = 0;
			max = 1;
			i++;
		}
		else if (c == '*') {
			min = 0;
			max = -1;
			i++;
		}
		else if (c == '+') {
			min = 1;
			max = -1;
			i++;
		}
		else if (c == '{' && src.indexOf('}', i) > i && src.substring(i + 1, src.indexOf('}', i)).matches("\\d+(,\\d*)?")) {
			String body = src.substring(i + 1, src.indexOf('}', i));
			i = src.indexOf('}', i) + 1;
			int comma = body.indexOf(',');
			min = Integer.parseInt(comma < 0 ? body : body.substring(0, comma));
			max = comma < 0 ? min : comma == body.length() - 1 ? -1 : Integer.parseInt(body.substring(comma + 1));
			if (max >= 0 && max < min || Math.max(min, max) > MAX_REPEAT) {
				throw error("repetition {" + body + "} is invalid or above " + MAX_REPEAT);
			}
		}
		else {
			return atom;
		}
		if (more() && (src.charAt(i) == '?' || src.charAt(i) == '+')) {
			i++; // lazy or possessive: the same language
		}
		if (more() && "?*+".indexOf(src.charAt(i)) >= 0) {
			throw error("nested quantifier");
		}
		return b.repeat(name(), atom, min, max);
	}

	private List<Sym> atom() {
		char c = src.charAt(i);
		switch (c) {
			case '(' -> {
				i++;
				if (src.startsWith("?:", i)) {
					i += 2;
				}
				else if (src.startsWith("?", i)) {
					throw error("group (?" + (i + 1 < src.length() ? src.charAt(i + 1) : "") + "...) (lookaround or flags)");
				}
				List<Sym> inner = alternation();
				if (!more() || src.charAt(i) != ')') {
					throw error("missing ')'");
				}
				i++;
				return List.of(b.rule(name(), inner));
			}
			case '[' -> {
				return charClass();
			}
			case '.' -> {
				i++;
				return chars(new boolean[128], true, List.of(), List.of("\n"));
			}
			case '\\' -> {
				return escape(false, null);
			}
			case '^', '$' -> throw error("anchor '" + c + "' inside the expression");
			case '*', '+', '?' -> throw error("quantifier '" + c + "' with nothing to repeat");
			default -> {
				int cp = src.codePointAt(i);
				i += Character.charCount(cp);
				return literal(cp);
			}
		}
	}

	/** A single code point as bytes (escaped in JSON-string mode when it must be). */
	private List<Sym> literal(int cp) {
		if (cp < 128) {
			boolean[] set = new boolean[128];
			set[cp] = true;
			return chars(set, false, List.of(), List.of());
		}
		return Builder.literal(new String(Character.toChars(cp)));
	}

	/**
	 * An escape: a class shorthand or an escaped character. In a class ({@code into} not null) the
	 * character is added to {@code into} and null returned.
	 */
	private List<Sym> escape(boolean inClass, boolean[] into) {
		i++;
		if (!more()) {
			throw error("trailing backslash");
		}
		char e = src.charAt(i++);
		boolean[] set = new boolean[128];
		boolean negate = false;
		switch (e) {
			case 'd' -> range(set, '0', '9');
			case 'D' -> {
				range(set, '0', '9');
				negate = true;
			}
			case 'w' -> word(set);
			case 'W' -> {
				word(set);
				negate = true;
			}
			case 's' -> space(set);
			case 'S' -> {
				space(set);
				negate = true;
			}
			case 'n' -> set['\n'] = true;
			case 't' -> set['\t'] = true;
			case 'r' -> set['\r'] = true;
			case 'f' -> set['\f'] = true;
			case 'v' -> set[0x0B] = true;
			case 'u' -> {
				if (i + 4 > src.length()) {
					throw error("\\u needs 4 hex digits");
				}
				int cp = Integer.parseInt(src.substring(i, i + 4), 16);
				i += 4;
				if (cp >= 128) {
					if (inClass) {
						throw error("non-ASCII \\u escape in a class");
					}
					return literal(cp);
				}
				set[cp] = true;
			}
			default -> {
				if (Character.isLetterOrDigit(e)) {
					throw error("escape \\" + e + " (backreferences, \\b and the like)");
				}
				set[e] = true;
			}
		}
		if (inClass) {
			if (negate) {
				throw error("negated shorthand \\" + e + " inside a class");
			}
			for (int k = 0; k < 128; k++) {
				into[k] |= set[k];
			}
			return null;
		}
		return negate ? chars(set, true, List.of(), List.of()) : chars(set, false, List.of(), List.of());
	}

	private List<Sym> charClass() {
		i++;
		boolean negate = false;
		if (more() && src.charAt(i) == '^') {
			negate = true;
			i++;
		}
		boolean[] set = new boolean[128];
		List<String> nonAscii = new ArrayList<>();
		boolean first = true;
		while (more() && (src.charAt(i) != ']' || first)) {
			first = false;
			int lo;
			if (src.charAt(i) == '\\') {
				int before = i;
				escape(true, set);
				// a single escaped character can start a range
				if (i - before == 2 && more() && src.charAt(i) == '-' && i + 1 < src.length() && src.charAt(i + 1) != ']') {
					lo = src.charAt(before + 1);
				}
				else {
					continue;
				}
			}
			else {
				lo = src.codePointAt(i);
				i += Character.charCount(lo);
			}
			if (more() && src.charAt(i) == '-' && i + 1 < src.length() && src.charAt(i + 1) != ']') {
				i++;
				int hi;
				if (src.charAt(i) == '\\') {
					i++;
					hi = src.charAt(i++);
				}
				else {
					hi = src.codePointAt(i);
					i += Character.charCount(hi);
				}
				if (hi < lo) {
					throw error("range out of order");
				}
				if (hi >= 128) {
					throw error("non-ASCII range in a class");
				}
				range(set, lo, hi);
			}
			else if (lo >= 128) {
				nonAscii.add(new String(Character.toChars(lo)));
			}
			else {
				set[lo] = true;
			}
		}
		if (!more()) {
			throw error("missing ']'");
		}
		i++;
		if (negate && !nonAscii.isEmpty()) {
			throw error("non-ASCII characters in a negated class");
		}
		return chars(set, negate, nonAscii, List.of());
	}

	/**
	 * Symbols for one character: from {@code set} (ASCII) or, negated, any character not in it
	 * (any non-ASCII character included, as whole UTF-8 sequences), plus the non-ASCII alternatives.
	 * {@code excluded} are characters a negated set leaves out besides the set ({@code .} and newline).
	 */
	private List<Sym> chars(boolean[] set, boolean negate, List<String> nonAscii, List<String> excluded) {
		boolean[] s = set.clone();
		if (negate) {
			for (int k = 0; k < 128; k++) {
				s[k] = !s[k];
			}
			for (String x : excluded) {
				s[x.charAt(0)] = false;
			}
		}
		List<List<Sym>> alts = new ArrayList<>();
		long[] plain = new long[4];
		for (int k = 0; k < 128; k++) {
			if (!s[k]) {
				continue;
			}
			String esc = jsonString ? jsonEscape(k) : null;
			if (esc != null) {
				alts.add(Builder.literal(esc));
			}
			else {
				plain[k >>> 6] |= 1L << k;
			}
		}
		if ((plain[0] | plain[1]) != 0) {
			alts.add(0, List.of(new Bytes(plain)));
		}
		for (String x : nonAscii) {
			alts.add(Builder.literal(x));
		}
		if (negate) {
			if (utf8 == null) {
				utf8 = JsonSchemaCompiler.utf8Multibyte(b);
			}
			alts.add(List.of(utf8));
		}
		if (alts.isEmpty()) {
			throw error("a class that matches nothing");
		}
		if (alts.size() == 1) {
			return alts.get(0);
		}
		return List.of(b.choice(name(), alts));
	}

	/** How a character must be written inside a JSON string, or null when it is written as itself. */
	static String jsonEscape(int c) {
		return switch (c) {
			case '"' -> "\\\"";
			case '\\' -> "\\\\";
			case '\n' -> "\\n";
			case '\t' -> "\\t";
			case '\r' -> "\\r";
			case '\b' -> "\\b";
			case '\f' -> "\\f";
			default -> c < 0x20 ? String.format("\\u%04x", c) : null;
		};
	}

	private static void range(boolean[] set, int lo, int hi) {
		for (int k = lo; k <= hi; k++) {
			set[k] = true;
		}
	}

	private static void word(boolean[] set) {
		range(set, 'a', 'z');
		range(set, 'A', 'Z');
		range(set, '0', '9');
		set['_'] = true;
	}

	private static void space(boolean[] set) {
		for (char c : new char[] { ' ', '\t', '\n', '\r', '\f', 0x0B }) {
			set[c] = true;
		}
	}
}
