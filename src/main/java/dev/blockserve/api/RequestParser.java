package dev.blockserve.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.blockserve.engine.SamplingParams;
import tools.jackson.databind.JsonNode;

/**
 * Reads the fields of completion and chat requests with OpenAI's semantics and vLLM's extensions,
 * rejecting each wrong value with a 400 that names the field. Unknown fields are ignored, as OpenAI does.
 */
final class RequestParser {

	private RequestParser() {
	}

	static Integer optInt(JsonNode body, String field, int min, int max) {
		JsonNode n = body.get(field);
		if (n == null || n.isNull()) {
			return null;
		}
		if (!n.isIntegralNumber() || !n.canConvertToInt()) {
			throw ApiException.badRequest("'" + field + "' must be an integer", field);
		}
		int v = n.asInt();
		if (v < min || v > max) {
			throw ApiException.badRequest("'" + field + "' must be between " + min + " and " + max + ", got " + v, field);
		}
		return v;
	}

	static Double optNumber(JsonNode body, String field, double min, double max) {
		JsonNode n = body.get(field);
		if (n == null || n.isNull()) {
			return null;
		}
		if (!n.isNumber()) {
			throw ApiException.badRequest("'" + field + "' must be a number", field);
		}
		double v;
		try {
			v = n.asDouble();
		}
		catch (RuntimeException e) { // a number too long or too large to be a double
			throw ApiException.badRequest("'" + field + "' must be between " + min + " and " + max, field);
		}
		if (!(v >= min && v <= max)) {
			throw ApiException.badRequest("'" + field + "' must be between " + min + " and " + max + ", got " + v, field);
		}
		return v;
	}

	static boolean optBool(JsonNode body, String field, boolean dflt) {
		JsonNode n = body.get(field);
		if (n == null || n.isNull()) {
			return dflt;
		}
		if (!n.isBoolean()) {
			throw ApiException.badRequest("'" + field + "' must be a boolean", field);
		}
		return n.asBoolean();
	}

	static List<String> stop(JsonNode body) {
		JsonNode n = body.get("stop");
		List<String> out = new ArrayList<>();
		if (n == null || n.isNull()) {
			return out;
		}
		if (n.isString()) {
			out.add(n.asString());
		}
		else if (n.isArray()) {
			for (JsonNode s : n) {
				if (!s.isString()) {
					throw ApiException.badRequest("'stop' must be a string or an array of strings", "stop");
				}
				out.add(s.asString());
			}
		}
		else {
			throw ApiException.badRequest("'stop' must be a string or an array of strings", "stop");
		}
		for (String s : out) {
			if (s.isEmpty()) {
				throw ApiException.badRequest("'stop' strings must not be empty", "stop");
			}
		}
		return out;
	}

	/** vLLM's stop_token_ids: an array of token ids (their range against the vocabulary is checked on submit). */
	static int[] tokenIds(JsonNode body, String field) {
		JsonNode n = body.get(field);
		if (n == null || n.isNull()) {
			return new int[0];
		}
		if (!n.isArray()) {
			throw ApiException.badRequest("'" + field + "' must be an array of token ids", field);
		}
		int[] out = new int[n.size()];
		for (int i = 0; i < out.length; i++) {
			JsonNode t = n.get(i);
			if (!t.isIntegralNumber() || !t.canConvertToInt() || t.asInt() < 0) {
				throw ApiException.badRequest("'" + field + "' must be an array of token ids (integers >= 0)", field);
			}
			out[i] = t.asInt();
		}
		return out;
	}

	private static int[] nonEmpty(int[] ids, String field) {
		if (ids.length == 0) {
			throw ApiException.badRequest("'" + field + "' must not be empty", field);
		}
		return ids;
	}

	/**
	 * OpenAI's logit_bias: an object from token ids (as strings, e.g. {@code {"1234": -100}}) to a bias in
	 * [-100, 100] added to that token's logit.
	 */
	static SamplingParams.LogitBias logitBias(JsonNode body) {
		JsonNode n = body.get("logit_bias");
		if (n == null || n.isNull()) {
			return SamplingParams.LogitBias.NONE;
		}
		if (!n.isObject()) {
			throw ApiException.badRequest("'logit_bias' must be an object mapping token ids to numbers", "logit_bias");
		}
		Map<Integer, Double> bias = new LinkedHashMap<>();
		for (var e : n.properties()) {
			int id;
			try {
				id = Integer.parseInt(e.getKey().strip());
			}
			catch (NumberFormatException ex) {
				throw ApiException.badRequest("'logit_bias' keys must be token ids, got '" + e.getKey() + "'", "logit_bias");
			}
			JsonNode v = e.getValue();
			if (id < 0 || !v.isNumber() || !(v.asDouble() >= -100 && v.asDouble() <= 100)) {
				throw ApiException.badRequest("'logit_bias' maps token ids (>= 0) to numbers between -100 and 100, got "
						+ e.getKey() + ": " + v, "logit_bias");
			}
			bias.put(id, v.asDouble());
		}
		return SamplingParams.LogitBias.of(bias);
	}

	/** vLLM's bad_words: a list of non-empty strings (at most {@link SamplingParams#MAX_BAD_WORDS}), or absent. */
	static List<String> badWords(JsonNode body) {
		JsonNode w = body.get("bad_words");
		if (w == null || w.isNull()) {
			return List.of();
		}
		if (!w.isArray() || w.size() > SamplingParams.MAX_BAD_WORDS) {
			throw ApiException.badRequest("'bad_words' must be a list of at most " + SamplingParams.MAX_BAD_WORDS + " strings",
					"bad_words");
		}
		List<String> words = new java.util.ArrayList<>();
		for (JsonNode x : w) {
			if (!x.isString() || x.asString().isBlank() || x.asString().length() > 1000) {
				throw ApiException.badRequest("each of 'bad_words' must be a non-blank string of at most 1000 characters",
						"bad_words");
			}
			words.add(x.asString());
		}
		return words;
	}

	/** vLLM's cache_salt: a non-empty string, or absent. */
	static String cacheSalt(JsonNode body) {
		JsonNode salt = body.get("cache_salt");
		if (salt == null || salt.isNull()) {
			return null;
		}
		if (!salt.isString() || salt.asString().isEmpty() || salt.asString().length() > SamplingParams.MAX_CACHE_SALT_LENGTH) {
			throw ApiException.badRequest("'cache_salt' must be a non-empty string of at most "
					+ SamplingParams.MAX_CACHE_SALT_LENGTH + " characters", "cache_salt");
		}
		return salt.asString();
	}

	/** The sampling fields shared by both endpoints; {@code maxTokens} 0 means up to the context length. */
	static SamplingParams sampling(JsonNode body, int maxTokens, int logprobs, dev.blockserve.constraint.Grammar grammar) {
		Integer n = optInt(body, "n", 1, 128);
		Double temperature = optNumber(body, "temperature", 0, 2);
		Double topP = optNumber(body, "top_p", 0, 1);
		if (topP != null && topP == 0) {
			throw ApiException.badRequest("'top_p' must be greater than 0", "top_p");
		}
		Integer topK = optInt(body, "top_k", -1, Integer.MAX_VALUE);
		Double minP = optNumber(body, "min_p", 0, 1);
		Double presence = optNumber(body, "presence_penalty", -2, 2);
		Double frequency = optNumber(body, "frequency_penalty", -2, 2);
		Double repetition = optNumber(body, "repetition_penalty", 0, 10);
		if (repetition != null && repetition == 0) {
			throw ApiException.badRequest("'repetition_penalty' must be greater than 0", "repetition_penalty");
		}
		JsonNode seedNode = body.get("seed");
		Long seed = null;
		if (seedNode != null && !seedNode.isNull()) {
			if (!seedNode.isIntegralNumber() || !seedNode.canConvertToLong()) {
				throw ApiException.badRequest("'seed' must be an integer between -2^63 and 2^63-1", "seed");
			}
			seed = seedNode.asLong();
		}
		Integer minTokens = optInt(body, "min_tokens", 0, Integer.MAX_VALUE);
		if (minTokens != null && maxTokens > 0 && minTokens > maxTokens) {
			throw ApiException.badRequest("'min_tokens' must be less than or equal to 'max_tokens', got " + minTokens
					+ " > " + maxTokens, "min_tokens");
		}
		try {
			SamplingParams.Builder b = SamplingParams.builder()
				.maxTokens(maxTokens)
				.stop(stop(body))
				.stopTokenIds(tokenIds(body, "stop_token_ids"))
				.allowedTokenIds(body.hasNonNull("allowed_token_ids") ? nonEmpty(tokenIds(body, "allowed_token_ids"), "allowed_token_ids") : null)
				.includeStopStrInOutput(optBool(body, "include_stop_str_in_output", false))
				.logitBias(logitBias(body))
				.minTokens(minTokens == null ? 0 : minTokens)
				.ignoreEos(optBool(body, "ignore_eos", false))
				.logprobs(logprobs)
				.skipSpecialTokens(optBool(body, "skip_special_tokens", true))
				.seed(seed)
				.cacheSalt(cacheSalt(body))
				.grammar(grammar);
			if (n != null) {
				b.n(n);
			}
			if (temperature != null) {
				b.temperature(temperature);
			}
			if (topK != null) {
				b.topK(topK);
			}
			if (topP != null) {
				b.topP(topP);
			}
			if (minP != null) {
				b.minP(minP);
			}
			if (presence != null) {
				b.presencePenalty(presence);
			}
			if (frequency != null) {
				b.frequencyPenalty(frequency);
			}
			if (repetition != null) {
				b.repetitionPenalty(repetition);
			}
			return b.build();
		}
		catch (IllegalArgumentException e) {
			throw ApiException.badRequest(e.getMessage(), null);
		}
	}

	/** Names the template itself binds; chat_template_kwargs may not replace them. */
	private static final java.util.Set<String> TEMPLATE_NAMES = java.util.Set.of("messages", "tools",
			"add_generation_prompt", "bos_token", "eos_token", "raise_exception", "strftime_now");

	/**
	 * vLLM's {@code chat_template_kwargs}: extra variables for the chat template, such as Qwen3's
	 * {@code enable_thinking}. Null when absent; a 400 when not an object or when it names a variable the
	 * template binds itself.
	 */
	@SuppressWarnings("unchecked")
	static Map<String, Object> chatTemplateKwargs(JsonNode body) {
		JsonNode k = body.get("chat_template_kwargs");
		if (k == null || k.isNull()) {
			return null;
		}
		if (!k.isObject()) {
			throw ApiException.badRequest("'chat_template_kwargs' must be an object", "chat_template_kwargs");
		}
		for (String name : k.propertyNames()) {
			if (TEMPLATE_NAMES.contains(name)) {
				throw ApiException.badRequest("'chat_template_kwargs' may not set '" + name + "'", "chat_template_kwargs");
			}
		}
		return Api.JSON.convertValue(k, Map.class);
	}

	static String model(JsonNode body) {
		JsonNode m = body.get("model");
		if (m == null || m.isNull()) {
			return null;
		}
		if (!m.isString()) {
			throw ApiException.badRequest("'model' must be a string", "model");
		}
		return m.asString();
	}

	/**
	 * The prompts of a completion request: a string, an array of strings, an array of token ids, or an
	 * array of arrays of token ids. Strings come back as strings, token lists as int[].
	 */
	static List<Object> prompts(JsonNode body) {
		return prompts(body, "prompt");
	}

	/**
	 * The prompts of field {@code field} ("prompt" of completions, "input" of embeddings): a string, an array
	 * of strings, an array of token ids or an array of them; each a String or an int[].
	 */
	static List<Object> prompts(JsonNode body, String field) {
		JsonNode p = body.get(field);
		if (p == null || p.isNull()) {
			throw ApiException.badRequest("'" + field + "' is required", field);
		}
		List<Object> out = new ArrayList<>();
		if (p.isString()) {
			out.add(p.asString());
		}
		else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
			out.add(ids(p, field));
		}
		else if (p.isArray() && !p.isEmpty()) {
			for (JsonNode e : p) {
				if (e.isString()) {
					out.add(e.asString());
				}
				else if (e.isArray()) {
					out.add(ids(e, field));
				}
				else {
					throw ApiException.badRequest("'" + field
							+ "' must be a string, an array of strings, an array of token ids or an array of arrays of token ids",
							field);
				}
			}
		}
		else {
			throw ApiException.badRequest("'" + field
					+ "' must be a non-empty string, array of strings, array of token ids or array of token id arrays", field);
		}
		return out;
	}

	private static int[] ids(JsonNode arr, String field) {
		int[] ids = new int[arr.size()];
		for (int i = 0; i < ids.length; i++) {
			JsonNode t = arr.get(i);
			if (!t.isIntegralNumber() || !t.canConvertToInt()) {
				throw ApiException.badRequest("token ids in '" + field + "' must be integers", field);
			}
			ids[i] = t.asInt();
		}
		return ids;
	}

	/** Chat messages as template data: role and content (a string, or text parts joined), plus any other fields. */
	@SuppressWarnings("unchecked")
	static List<Map<String, Object>> messages(JsonNode body) {
		JsonNode ms = body.get("messages");
		if (ms == null || !ms.isArray() || ms.isEmpty()) {
			throw ApiException.badRequest("'messages' must be a non-empty array", "messages");
		}
		List<Map<String, Object>> out = new ArrayList<>();
		for (int i = 0; i < ms.size(); i++) {
			JsonNode m = ms.get(i);
			String where = "messages[" + i + "]";
			if (!m.isObject()) {
				throw ApiException.badRequest(where + " must be an object", "messages");
			}
			String role = m.path("role").asString("");
			if (!List.of("system", "user", "assistant", "tool", "developer").contains(role)) {
				throw ApiException.badRequest(where + ".role must be one of system, user, assistant, tool, developer",
						"messages");
			}
			Map<String, Object> msg = new LinkedHashMap<>(io.convert(m, Map.class));
			msg.put("role", role);
			JsonNode c = m.get("content");
			if (c == null || c.isNull()) {
				msg.put("content", "");
			}
			else if (c.isString()) {
				msg.put("content", c.asString());
			}
			else if (c.isArray()) {
				StringBuilder sb = new StringBuilder();
				for (JsonNode part : c) {
					if (!"text".equals(part.path("type").asString("")) || !part.path("text").isString()) {
						throw ApiException.badRequest(where + ".content parts must be {\"type\": \"text\", \"text\": ...} "
								+ "(this model takes text only)", "messages");
					}
					sb.append(part.path("text").asString());
				}
				msg.put("content", sb.toString());
			}
			else {
				throw ApiException.badRequest(where + ".content must be a string or an array of text parts", "messages");
			}
			toolCallArguments(msg, where);
			out.add(msg);
		}
		return out;
	}

	/**
	 * An assistant message's tool calls carry their arguments as a JSON string (OpenAI's format); chat
	 * templates write them with {@code tojson}, so they get the parsed object, as vLLM gives them.
	 */
	@SuppressWarnings("unchecked")
	private static void toolCallArguments(Map<String, Object> msg, String where) {
		Object calls = msg.get("tool_calls");
		if (calls == null) {
			return;
		}
		if (!(calls instanceof List<?> list)) {
			throw ApiException.badRequest(where + ".tool_calls must be an array", "messages");
		}
		List<Object> out = new ArrayList<>();
		for (Object c : list) {
			if (!(c instanceof Map<?, ?> call) || !(call.get("function") instanceof Map<?, ?> f)
					|| !(f.get("name") instanceof String)) {
				throw ApiException.badRequest(where + ".tool_calls entries must be {\"id\", \"type\": \"function\", "
						+ "\"function\": {\"name\", \"arguments\"}}", "messages");
			}
			Map<String, Object> fn = new LinkedHashMap<>((Map<String, Object>) f);
			if (fn.get("arguments") instanceof String s) {
				try {
					fn.put("arguments", Api.JSON.readValue(s, Object.class));
				}
				catch (RuntimeException e) {
					// not JSON: the template gets the text as it came
				}
			}
			Map<String, Object> copy = new LinkedHashMap<>((Map<String, Object>) call);
			copy.put("function", fn);
			out.add(copy);
		}
		msg.put("tool_calls", out);
	}

	/** JSON conversion helper. */
	static final class io {

		private io() {
		}

		static <T> T convert(JsonNode n, Class<T> type) {
			return Api.JSON.convertValue(n, type);
		}
	}
}
