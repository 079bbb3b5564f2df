package dev.blockserve.api;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.engine.Engine;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * 5,000 generated hostile requests (seeded, so a failure reproduces) against the real server: wrong
 * types, out-of-range and absurd numbers, huge and deeply nested bodies, invalid UTF-8, NUL bytes,
 * token ids out of range, template-injection content, unknown roles, bad headers, truncated and
 * mis-sized bodies; on every route, embeddings included, with chat answers split for reasoning (as a Qwen3
 * template would have them). None may get a 5xx; every error answer is OpenAI's envelope; afterwards, idle, no
 * KV block is held. Prints the status histogram (docs/reliability.md quotes it).
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=2048",
				"blockserve.api.max-request-size=256KB", "blockserve.api.request-timeout=20s",
				"blockserve.api.http.header-timeout=500ms", "blockserve.api.http.body-timeout=1s",
				"blockserve.api.http.body-read-timeout=300ms", "blockserve.api.reasoning-parser=think",
				"blockserve.speculative.num-tokens=4", "blockserve.speculative.prompt-lookup-min=1",
				"blockserve.speculative.max-batch=64" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class HostileInputFuzzTest {
	// speculation is on (every request that generates may draft), so its paths meet the hostile inputs too


	static final int REQUESTS = 5000;

	@LocalServerPort
	int port;

	@Autowired
	Engine engine;

	static final String[] FIELDS = { "model", "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "min_p",
			"n", "seed", "stop", "logprobs", "top_logprobs", "echo", "stream", "stream_options", "presence_penalty",
			"frequency_penalty", "repetition_penalty", "ignore_eos", "priority", "skip_special_tokens", "tokens",
			"add_special_tokens", "response_format", "tools", "user", "tool_choice", "parallel_tool_calls", "guided_json",
			"guided_regex", "guided_choice", "structured_outputs", "logit_bias", "min_tokens", "stop_token_ids",
			"prompt_logprobs", "suffix", "best_of", "continue_final_message", "add_generation_prompt",
			"truncate_prompt_tokens", "include_reasoning", "cache_salt", "input", "encoding_format", "dimensions",
			"allowed_token_ids", "include_stop_str_in_output", "return_tokens_as_token_ids", "bad_words", "instructions",
			"max_output_tokens", "text", "previous_response_id", "include" };

	/** The fields that shape the output: they also get near-valid hostile schemas, regexes and tools. */
	static final java.util.Set<String> SHAPING = java.util.Set.of("response_format", "tools", "tool_choice", "guided_json",
			"guided_regex", "guided_choice", "structured_outputs");

	/** A hostile JSON schema: right shape, wrong or extreme content. */
	static String schema(Random r, int depth) {
		String[] leaves = { "{\"type\":\"string\"}", "{\"type\":\"integer\",\"format\":\"int32\"}", "{\"type\":\"strng\"}",
				"{\"minimum\":1}", "{\"enum\":[]}", "{\"enum\":[1,\"a\",null,{\"b\":[]}]}", "{\"$ref\":\"#\"}",
				"{\"$ref\":\"#/nowhere\"}", "{\"$ref\":\"http://x/y\"}", "{\"anyOf\":[{\"$ref\":\"#\"}]}", "true", "false", "7",
				"{\"type\":\"string\",\"pattern\":\"(a\"}", "{\"type\":\"string\",\"pattern\":\"a{1000}{1000}\"}",
				"{\"type\":\"string\",\"pattern\":\"[z-a]\"}", "{\"type\":\"array\",\"minItems\":5,\"maxItems\":2}",
				"{\"type\":\"array\",\"maxItems\":100000}", "{\"type\":\"string\",\"format\":\"email\"}",
				"{\"type\":[\"string\",\"string\"]}", "{\"oneOf\":[{},{}]}", "{\"allOf\":[{},{}]}", "{\"required\":[\"q\"]}" };
		if (depth > 4 || r.nextInt(3) == 0) {
			return leaves[r.nextInt(leaves.length)];
		}
		StringBuilder b = new StringBuilder("{\"type\":\"object\",\"properties\":{");
		int n = r.nextInt(4);
		for (int i = 0; i < n; i++) {
			b.append(i > 0 ? "," : "").append(quote("p" + i + text(r).substring(0, 1))).append(':').append(schema(r, depth + 1));
		}
		b.append("}");
		if (r.nextBoolean()) {
			b.append(",\"required\":[\"p0\"]");
		}
		if (r.nextBoolean()) {
			b.append(",\"additionalProperties\":").append(r.nextBoolean() ? "false" : schema(r, depth + 1));
		}
		return b.append("}").toString();
	}

	/** The sampling fields that take token ids or counts: they also get values near their edges. */
	static final java.util.Set<String> TOKEN_FIELDS = java.util.Set.of("logit_bias", "min_tokens", "stop_token_ids",
			"prompt_logprobs", "allowed_token_ids");

	/** A near-valid value for one of the {@link #TOKEN_FIELDS}: ids and counts around the vocabulary's and the limits' edges. */
	static String tokenField(Random r, String field) {
		int[] ids = { 0, 1, 2, 511, 512, -1, 49152, Integer.MAX_VALUE };
		int id = r.nextInt(3) == 0 ? ids[r.nextInt(ids.length)] : r.nextInt(600);
		return switch (field) {
			case "logit_bias" -> "{" + quote(r.nextInt(8) == 0 ? " " + id : Integer.toString(id)) + ":"
					+ new String[] { "100", "-100", "100.5", "-1e309", "0", "\"5\"", "null", "7" }[r.nextInt(8)]
					+ (r.nextBoolean() ? ",\"2\":100" : "") + "}";
			case "stop_token_ids", "allowed_token_ids" -> "[" + id + (r.nextBoolean() ? "," + ids[r.nextInt(ids.length)] : "") + "]";
			default -> Integer.toString(new int[] { -1, 0, 1, 2, 3, 20, 21, 1000 }[r.nextInt(8)]);
		};
	}

	/** A near-valid value for one of the {@link #SHAPING} fields. */
	static String shaping(Random r, String field) {
		String[] regexes = { "[A-Z]{2}", "(a|b)*", "(?<=x)a", "\\\\1", "a{2,1}", "[^\\\"]{3}", "é+", "(((", "a**", "" };
		return switch (field) {
			case "response_format" -> switch (r.nextInt(4)) {
				case 0 -> "{\"type\":\"json_object\"}";
				case 1 -> "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":" + schema(r, 0) + "}}";
				case 2 -> "{\"type\":\"json_schema\",\"json_schema\":" + value(r, 2) + "}";
				default -> "{\"type\":" + value(r, 2) + "}";
			};
			case "guided_json" -> r.nextBoolean() ? schema(r, 0) : quote(schema(r, 0).replace("\"", "\\\""));
			case "guided_regex" -> quote(regexes[r.nextInt(regexes.length)]);
			case "guided_choice" -> r.nextBoolean() ? "[\"yes\",\"no\",\"\"]" : "[\"a\",\"é\"]";
			case "structured_outputs" -> "{\"" + new String[] { "json", "regex", "choice", "grammar", "json_object", "x" }[r.nextInt(6)]
					+ "\":" + (r.nextBoolean() ? schema(r, 0) : value(r, 2)) + "}";
			case "tools" -> "[{\"type\":\"function\",\"function\":{\"name\":" + (r.nextInt(4) == 0 ? value(r, 3) : "\"f\"")
					+ ",\"parameters\":" + schema(r, 0) + "}}" + (r.nextBoolean() ? ",{\"type\":\"function\",\"function\":{\"name\":\"g\"}}" : "") + "]";
			default -> new String[] { "\"required\"", "\"auto\"", "\"none\"", "\"any\"",
					"{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "{\"type\":\"function\",\"function\":{\"name\":\"zz\"}}",
					"{\"type\":\"function\"}" }[r.nextInt(7)];
		};
	}

	static final String[] PATHS = { "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize", "/v1/models",
			"/v1/completions/", "/v1/unknown", "/health", "/v1/embeddings", "/v1/responses" };

	/** A value of a random kind, often of the wrong type for the field it lands in. */
	static String value(Random r, int depth) {
		switch (r.nextInt(depth > 3 ? 9 : 12)) {
			case 0: return "null";
			case 1: return r.nextBoolean() ? "true" : "false";
			case 2: return Integer.toString(r.nextInt(2000) - 1000);
			case 3: return Long.toString(r.nextLong());
			case 4: return "1" + "0".repeat(r.nextInt(500) + 1); // absurdly large integer
			case 5: return new String[] { "1e309", "-1e309", "0.0000000001", "-0", "3.5", "1e-400", "123456789012345678901234567890.5" }[r.nextInt(7)];
			case 6: return quote(text(r));
			case 7: return quote("");
			case 8: return "[" + r.nextInt(1_000_000) + "," + (r.nextInt(3) == 0 ? "4294967296" : "-1") + ",7]";
			case 9: {
				StringBuilder b = new StringBuilder("[");
				int n = r.nextInt(4);
				for (int i = 0; i < n; i++) {
					b.append(i > 0 ? "," : "").append(value(r, depth + 1));
				}
				return b.append("]").toString();
			}
			case 10: {
				StringBuilder b = new StringBuilder("{");
				int n = r.nextInt(3);
				for (int i = 0; i < n; i++) {
					b.append(i > 0 ? "," : "").append(quote(FIELDS[r.nextInt(FIELDS.length)])).append(':').append(value(r, depth + 1));
				}
				return b.append("}").toString();
			}
			default: return messages(r);
		}
	}

	static String text(Random r) {
		String[] pieces = { "Hello", "{{ 7*7 }}", "{% for x in range(99999999) %}x{% endfor %}", "{{ raise_exception('boom') }}",
				"\\u0000", "\\ud800", "<|im_start|>system", "[INST]", "{{ ''.__class__ }}", "é中🙂", " ", "\\n\\t",
				"{%- set x = messages[0] -%}", "</s><s>", "\\\"", "a".repeat(2000), "<think>", "</think>" };
		StringBuilder b = new StringBuilder();
		int n = r.nextInt(4) + 1;
		for (int i = 0; i < n; i++) {
			b.append(pieces[r.nextInt(pieces.length)]);
		}
		return b.toString();
	}

	static String messages(Random r) {
		String[] roles = { "user", "assistant", "system", "tool", "developer", "admin", "", "USER", "function" };
		StringBuilder b = new StringBuilder("[");
		int n = r.nextInt(4);
		for (int i = 0; i < n; i++) {
			b.append(i > 0 ? "," : "").append("{\"role\":").append(r.nextInt(8) == 0 ? value(r, 4) : quote(roles[r.nextInt(roles.length)]));
			switch (r.nextInt(5)) {
				case 0 -> {
				}
				case 1 -> b.append(",\"content\":").append(value(r, 4));
				case 2 -> b.append(",\"content\":[{\"type\":\"text\",\"text\":").append(quote(text(r))).append("},{\"type\":\"image_url\"}]");
				default -> b.append(",\"content\":").append(quote(text(r)));
			}
			b.append("}");
		}
		return b.append("]").toString();
	}

	static String quote(String s) {
		return "\"" + s.replace("\\\\", "\\\\\\\\") + "\"";
	}

	/** A valid-looking base body with a few fields replaced, removed or added. */
	static String body(Random r, String path) {
		Map<String, String> f = new TreeMap<>();
		f.put("max_tokens", "2");
		if (path.contains("chat")) {
			f.put("messages", "[{\"role\":\"user\",\"content\":\"hi\"}]");
		}
		else if (path.equals("/detokenize")) {
			f.put("tokens", "[1,2,3]");
		}
		else if (path.equals("/v1/embeddings")) {
			f.put("input", "\"Once upon a time\"");
		}
		else if (path.equals("/v1/responses")) {
			f.put("input", r.nextBoolean() ? "\"Once upon a time\"" : messages(r));
		}
		else {
			f.put("prompt", "\"Once upon a time\"");
		}
		int mutations = 1 + r.nextInt(3);
		for (int i = 0; i < mutations; i++) {
			String k = FIELDS[r.nextInt(FIELDS.length)];
			if (r.nextInt(6) == 0) {
				f.remove(k);
			}
			else if (TOKEN_FIELDS.contains(k) && r.nextBoolean()) {
				f.put(k, tokenField(r, k));
			}
			else if (SHAPING.contains(k) && r.nextBoolean()) {
				f.put(k, shaping(r, k));
				if (k.equals("tool_choice") && r.nextBoolean()) {
					f.put("tools", shaping(r, "tools"));
				}
			}
			else {
				f.put(k, value(r, 0));
			}
		}
		if (!f.containsKey("max_tokens") || r.nextInt(3) > 0) {
			// keep valid ones short; one in ten long enough to draft and verify speculative tokens
			f.put("max_tokens", Integer.toString(r.nextInt(10) == 0 ? 4 + r.nextInt(28) : 1 + r.nextInt(3)));
		}
		if (path.equals("/v1/responses") && (!f.containsKey("max_output_tokens") || r.nextInt(3) > 0)) {
			f.put("max_output_tokens", Integer.toString(1 + r.nextInt(8)));
		}
		StringBuilder b = new StringBuilder("{");
		f.forEach((k, v) -> b.append(b.length() > 1 ? "," : "").append(quote(k)).append(':').append(v));
		return b.append('}').toString();
	}

	/** The raw bytes of one hostile request. */
	static byte[] request(Random r) {
		String path = PATHS[r.nextInt(PATHS.length)];
		String method = path.startsWith("/v1/models") || path.equals("/health") ? (r.nextInt(4) == 0 ? "POST" : "GET")
				: (r.nextInt(15) == 0 ? "GET" : "POST");
		byte[] body = body(r, path).getBytes(StandardCharsets.UTF_8);
		String contentType = "application/json";
		String extraHeaders = "";
		int kind = r.nextInt(100);
		if (kind < 8) { // invalid UTF-8 or NUL bytes inside the JSON
			body = splice(body, r.nextBoolean() ? new byte[] { (byte) 0xC3, (byte) 0x28, (byte) 0xFF } : new byte[] { 0, 0 }, r);
		}
		else if (kind < 12) { // deeply nested
			int depth = 100 + r.nextInt(5000);
			body = ("{\"prompt\":" + "[".repeat(depth) + "]".repeat(depth) + "}").getBytes(StandardCharsets.UTF_8);
		}
		else if (kind < 15) { // larger than the body limit
			body = ("{\"prompt\":\"" + "x".repeat(300_000) + "\"}").getBytes(StandardCharsets.UTF_8);
		}
		else if (kind < 18) { // not JSON at all, or cut short
			body = r.nextBoolean() ? "prompt=hello&max_tokens=1".getBytes(StandardCharsets.UTF_8)
					: java.util.Arrays.copyOf(body, Math.max(1, body.length / 2));
		}
		else if (kind < 22) {
			contentType = new String[] { "text/plain", "application/xml", "", "application/json; charset=latin1", "*/*" }[r.nextInt(5)];
		}
		else if (kind < 26) {
			extraHeaders = new String[] { "Authorization: Bearer \u0001\r\n", "Authorization: Basic xx\r\n",
					"X-Weird: " + "v".repeat(20_000) + "\r\n", "Accept: text/event-stream\r\n", "Expect: 100-continue\r\n",
					"Content-Encoding: gzip\r\n" }[r.nextInt(6)];
		}
		ByteArrayOutputStream out = new ByteArrayOutputStream();
		String head = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
				+ (contentType.isEmpty() ? "" : "Content-Type: " + contentType + "\r\n") + extraHeaders;
		boolean withBody = method.equals("POST");
		if (withBody && kind >= 26 && kind < 29) { // truncated chunked body
			head += "Transfer-Encoding: chunked\r\n\r\n" + Integer.toHexString(body.length) + "\r\n";
			out.writeBytes(head.getBytes(StandardCharsets.ISO_8859_1));
			out.writeBytes(java.util.Arrays.copyOf(body, body.length / 2));
			return out.toByteArray();
		}
		if (withBody && kind >= 29 && kind < 31) { // Content-Length larger than the body
			head += "Content-Length: " + (body.length + 10) + "\r\n\r\n";
		}
		else if (withBody) {
			head += "Content-Length: " + body.length + "\r\n\r\n";
		}
		else {
			head += "\r\n";
		}
		out.writeBytes(head.getBytes(StandardCharsets.ISO_8859_1));
		if (withBody) {
			out.writeBytes(body);
		}
		return out.toByteArray();
	}

	static byte[] splice(byte[] body, byte[] bad, Random r) {
		String s = new String(body, StandardCharsets.ISO_8859_1);
		int at = s.indexOf("\"", s.indexOf(':') + 1);
		at = at < 0 ? 1 : at + 1;
		ByteArrayOutputStream out = new ByteArrayOutputStream();
		out.write(body, 0, at);
		out.writeBytes(bad);
		out.write(body, at, body.length - at);
		return out.toByteArray();
	}

	@Test
	void noHostileRequestGetsA5xxAndEveryErrorIsInTheEnvelope() throws Exception {
		Random seeds = new Random(20261128);
		List<Long> requestSeeds = new ArrayList<>();
		for (int i = 0; i < REQUESTS; i++) {
			requestSeeds.add(seeds.nextLong());
		}
		ExecutorService pool = Executors.newFixedThreadPool(16);
		Map<Integer, Integer> histogram = new TreeMap<>();
		List<String> failures = new ArrayList<>();
		try {
			List<Future<RawHttp.Response>> answers = new ArrayList<>();
			for (long s : requestSeeds) {
				byte[] req = request(new Random(s));
				answers.add(pool.submit(() -> RawHttp.send(port, req, 30_000)));
			}
			for (int i = 0; i < answers.size(); i++) {
				RawHttp.Response a;
				try {
					a = answers.get(i).get();
				}
				catch (java.util.concurrent.ExecutionException e) {
					byte[] req = request(new Random(requestSeeds.get(i)));
					failures.add("seed " + requestSeeds.get(i) + ": no HTTP answer: " + e.getCause() + " to "
							+ new String(req, 0, Math.min(req.length, 160), StandardCharsets.ISO_8859_1).replace("\r\n", "|"));
					continue;
				}
				histogram.merge(a.status(), 1, Integer::sum);
				if (a.status() >= 500) {
					failures.add("seed " + requestSeeds.get(i) + ": " + a.status() + " " + a.body());
				}
				else if (a.status() >= 400 && !envelope(a.body())) {
					failures.add("seed " + requestSeeds.get(i) + ": " + a.status() + " not in the envelope: " + a.body());
				}
			}
		}
		finally {
			pool.shutdownNow();
		}
		System.out.println("FUZZ requests=" + REQUESTS + " statuses=" + histogram);
		assertThat(failures).as("hostile requests answered wrongly").isEmpty();
		assertThat(RawHttp.request(port, "GET", "/health", null, null).status()).as("server alive").isEqualTo(200);
		long deadline = System.nanoTime() + 30_000_000_000L;
		while (EngineProbes.usedBlocks(engine) > 0 && System.nanoTime() < deadline) {
			Thread.sleep(100);
		}
		assertThat(EngineProbes.usedBlocks(engine)).as("blocks in use when idle").isZero();
		EngineProbes.checkInvariants(engine);
		String metrics = RawHttp.request(port, "GET", "/metrics", null, null).body();
		java.util.regex.Matcher drafted = java.util.regex.Pattern
			.compile("(?m)^blockserve_spec_decode_draft_tokens_total\\{[^}]*\\} ([0-9.eE+]+)$").matcher(metrics);
		assertThat(drafted.find() && Double.parseDouble(drafted.group(1)) > 0).as("the hostile requests ran speculating")
			.isTrue();
		System.out.println("FUZZ speculative draft tokens=" + drafted.group(1));
	}

	/** Whether a (possibly chunked) body holds OpenAI's error envelope. */
	static boolean envelope(String body) {
		int start = body.indexOf('{');
		int end = body.lastIndexOf('}');
		if (start < 0 || end < start) {
			return false;
		}
		try {
			JsonNode n = Api.JSON.readTree(body.substring(start, end + 1));
			return n.path("error").path("message").isString() && n.path("error").path("type").isString();
		}
		catch (RuntimeException e) {
			return false;
		}
	}
}
