package dev.blockserve.constraint;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The grammar engine against two oracles: at every step of random walks the trie-walked mask equals the
 * token-by-token answer of the matcher, and every complete output is judged by networknt's validator
 * (schemas) or java.util.regex (regexes).
 */
class GrammarTest {

	/** Every byte as a token, multi-byte tokens that cross JSON's structure, a special token and EOS. */
	static final List<String> MULTI = List.of("{\"", "\":", "\",", "\"}", "\"]", "}]", "},", "],", "true", "false",
			"null", " \"", "\n  ", "12", "ab", "\"a", "é", "-0", "1.5e", "\\u00", "\\n", "\"\"", "[]", "{}", "2024-",
			"T10:", "AB-", "red", "\": \"", "  ");

	static final int EOS;

	static final TokenVocabulary VOCAB;

	static {
		List<byte[]> toks = new ArrayList<>();
		for (int b = 0; b < 256; b++) {
			toks.add(new byte[] { (byte) b });
		}
		for (String m : MULTI) {
			toks.add(m.getBytes(StandardCharsets.UTF_8));
		}
		toks.add(null); // a special token: never allowed
		EOS = toks.size();
		toks.add(null);
		VOCAB = new TokenVocabulary(toks.toArray(new byte[0][]));
	}

	static GrammarRuntime runtime(Grammar g) {
		return new GrammarRuntime(g, VOCAB, new int[] { EOS }, VOCAB.size());
	}

	static boolean accepts(Grammar g, String text) {
		GrammarMatcher m = runtime(g).matcher();
		for (byte x : text.getBytes(StandardCharsets.UTF_8)) {
			if (!m.accept(x & 0xff)) {
				return false;
			}
		}
		return m.isAccepting();
	}

	/**
	 * A random walk of at most {@code steps} tokens: checks each mask against the matcher, prefers closing
	 * tokens half the time so walks end. Returns the text, or null when the walk did not finish.
	 */
	static String walk(Grammar g, long seed, int steps) {
		GrammarRuntime rt = runtime(g);
		GrammarMatcher m = rt.matcher();
		SplittableRandom rnd = new SplittableRandom(seed);
		StringBuilder bytes = new StringBuilder();
		java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
		for (int step = 0; step < steps; step++) {
			long[] mask = m.mask();
			List<Integer> allowed = new ArrayList<>();
			List<Integer> closing = new ArrayList<>();
			for (int t = 0; t < VOCAB.size(); t++) {
				boolean bit = (mask[t >>> 6] & (1L << t)) != 0;
				boolean brute = t == EOS ? m.isAccepting() : m.fork().accept(t);
				assertThat(bit).as("token %d after %s", t, bytes).isEqualTo(brute);
				if (bit) {
					allowed.add(t);
					byte[] tb = VOCAB.bytes(t);
					if (t == EOS || (tb != null && new String(tb, StandardCharsets.ISO_8859_1).matches(".*[\"}\\]0-9el].*"))) {
						closing.add(t);
					}
				}
			}
			assertThat(allowed).as("a live state allows some token").isNotEmpty();
			List<Integer> from = !closing.isEmpty() && rnd.nextBoolean() ? closing : allowed;
			int t = from.get(rnd.nextInt(from.size()));
			if (t == EOS) {
				return out.toString(StandardCharsets.UTF_8);
			}
			assertThat(m.accept(t)).isTrue();
			out.writeBytes(VOCAB.bytes(t));
			bytes.append(new String(VOCAB.bytes(t), StandardCharsets.UTF_8));
			if (m.isTerminated()) {
				return out.toString(StandardCharsets.UTF_8);
			}
		}
		return null;
	}

	@Test
	void randomWalksOverTenSchemasValidateAndMasksEqualTheMatcher() {
		int finished = 0;
		for (int k = 0; k < Schemas.TEN.size(); k++) {
			String schema = Schemas.TEN.get(k);
			Grammar g = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree(schema));
			SchemaOracle oracle = new SchemaOracle(schema);
			for (int seed = 0; seed < 12; seed++) {
				String text = walk(g, seed * 31L + k, 600);
				if (text != null) {
					finished++;
					assertThat(oracle.errors(text)).as("schema %d output %s", k + 1, text).isEmpty();
				}
			}
		}
		assertThat(finished).as("most walks finish").isGreaterThan(90);
	}

	@Test
	void anyJsonObjectWalksParse() {
		Grammar g = JsonSchemaCompiler.anyObjectGrammar();
		SchemaOracle oracle = new SchemaOracle("{\"type\":\"object\"}");
		int finished = 0;
		for (int seed = 0; seed < 30; seed++) {
			String text = walk(g, seed, 600);
			if (text != null) {
				finished++;
				assertThat(oracle.errors(text)).as(text).isEmpty();
			}
		}
		assertThat(finished).isGreaterThan(20);
	}

	@Test
	void regexWalksMatchJavaRegex() {
		for (String re : List.of("[A-Z]{2}-[0-9]{3}", "(yes|no|maybe)", "a+b*c?", "\\d{1,3}(\\.\\d{1,3}){3}",
				"[^\"]{0,5}x", "(?:ab|cd)+e", "é.{0,3}", "^\\w+@\\w+\\.(com|org)$")) {
			Grammar g = RegexCompiler.compile(re);
			Pattern p = Pattern.compile(re);
			for (int seed = 0; seed < 10; seed++) {
				String text = walk(g, seed, 200);
				if (text != null) {
					assertThat(p.matcher(text).matches()).as("/%s/ produced %s", re, text).isTrue();
				}
			}
		}
	}

	@Test
	void choicesAndExactTexts() {
		Grammar g = ChoiceGrammar.of(List.of("positive", "negative", "neutral"));
		assertThat(accepts(g, "positive")).isTrue();
		assertThat(accepts(g, "neutral")).isTrue();
		assertThat(accepts(g, "neutra")).isFalse();
		assertThat(accepts(g, "positive ")).isFalse();
		GrammarMatcher m = runtime(g).matcher();
		for (byte x : "negative".getBytes(StandardCharsets.UTF_8)) {
			m.accept(x);
		}
		assertThat(m.isTerminated()).as("a finished choice has nothing left").isTrue();
	}

	@Test
	void jsonPieces() {
		Grammar g = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree(Schemas.TEN.get(1)));
		assertThat(accepts(g, "{\"c\":1}")).isTrue();
		assertThat(accepts(g, "{\"a\": true, \"c\": -0.5e+10}")).isTrue();
		assertThat(accepts(g, "{\"b\":null,\"c\":3}")).isTrue();
		assertThat(accepts(g, "{\"c\":01}")).as("no leading zero").isFalse();
		assertThat(accepts(g, "{\"c\":1,}")).isFalse();
		assertThat(accepts(g, "{\"a\":true}")).as("c is required").isFalse();
		assertThat(accepts(g, "{\"c\":1,\"a\":true}")).as("schema order").isFalse();
		assertThat(accepts(g, "{\n  \"c\": 1\n}")).isTrue();
		assertThat(accepts(g, "{" + " ".repeat(30) + "\"c\":1}")).as("whitespace is bounded").isFalse();
		Grammar s = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree("{\"type\":\"string\"}"));
		assertThat(accepts(s, "\"h\\u00e9llo \\\"q\\\" é😀\"")).isTrue();
		assertThat(accepts(s, "\"a\nb\"")).as("raw control characters").isFalse();
		GrammarMatcher m = runtime(s).matcher();
		assertThat(m.accept('"')).isTrue();
		assertThat(m.accept(0xC3)).isTrue();
		assertThat(m.accept('"')).as("a split UTF-8 character cannot be closed").isFalse();
		assertThat(m.accept(0xA9)).isTrue();
	}

	@Test
	void numbersAreBounded() {
		Grammar g = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree("{\"type\":\"integer\"}"));
		assertThat(accepts(g, "1234567890123456")).isTrue();
		assertThat(accepts(g, "12345678901234567")).isFalse();
		GrammarMatcher m = runtime(g).matcher();
		for (char c : "1234567890123456".toCharArray()) {
			m.accept(c);
		}
		assertThat(m.isTerminated()).isTrue();
	}

	@Test
	void int32AndInt64FitTheirJavaTypes() {
		Grammar i32 = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree("{\"type\":\"integer\",\"format\":\"int32\"}"));
		assertThat(accepts(i32, "-999999999")).isTrue();
		assertThat(accepts(i32, "2147483647")).as("10 digits may overflow an int: refused").isFalse();
		Grammar i64 = JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree("{\"type\":\"integer\",\"format\":\"int64\"}"));
		assertThat(accepts(i64, "999999999999999999")).isTrue();
		assertThat(accepts(i64, "9999999999999999999")).isFalse();
	}

	@Test
	void refCyclesWithoutABaseCaseAreRefusedOrPruned() {
		assertThatThrownBy(() -> compile("{\"$ref\":\"#\"}")).hasMessageContaining("matches nothing");
		assertThatThrownBy(() -> compile("{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/properties/a\"}},\"required\":[\"a\"]}"))
			.hasMessageContaining("matches nothing");
		// an optional property that can never be completed is never started: no walk dead-ends
		Grammar g = compile("{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/properties/a\"},\"b\":{\"type\":\"boolean\"}}}");
		assertThat(accepts(g, "{\"b\":true}")).isTrue();
		GrammarMatcher m = runtime(g).matcher();
		for (char c : "{\"".toCharArray()) {
			m.accept(c);
		}
		assertThat(m.accept('a')).isFalse();
		for (int seed = 0; seed < 20; seed++) {
			assertThat(walk(g, seed, 300)).isNotNull();
		}
	}

	@Test
	void unsupportedKeywordsAreNamed() {
		assertThatThrownBy(() -> compile("{\"type\":\"number\",\"minimum\":3}"))
			.hasMessageContaining("'minimum'").hasMessageContaining("#");
		assertThatThrownBy(() -> compile("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"email\"}}}"))
			.hasMessageContaining("format 'email'").hasMessageContaining("#/properties/a");
		assertThatThrownBy(() -> compile("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"strin\"}}}"))
			.hasMessageContaining("unknown type 'strin'");
		assertThatThrownBy(() -> compile("{\"$ref\":\"http://example.com/s.json\"}")).hasMessageContaining("'$ref'");
		assertThatThrownBy(() -> compile("{\"type\":\"object\",\"properties\":{},\"required\":[\"x\"]}"))
			.hasMessageContaining("'required'");
		assertThatThrownBy(() -> compile("{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}"))
			.hasMessageContaining("'oneOf'");
		assertThatThrownBy(() -> RegexCompiler.compile("(a)\\1")).hasMessageContaining("\\1");
		assertThatThrownBy(() -> RegexCompiler.compile("a(?=b)")).hasMessageContaining("lookaround");
	}

	private static Grammar compile(String schema) {
		return JsonSchemaCompiler.compile(SchemaOracle.JSON.readTree(schema));
	}
}
