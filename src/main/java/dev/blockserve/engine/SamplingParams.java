package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.constraint.Grammar;

/**
 * How one request samples and stops. Build it with {@link #builder()} (defaults as OpenAI's); validated on
 * construction: a bad value fails with a message naming the field, which the HTTP layer turns into a 400.
 * Immutable, so any thread may read it.
 *
 * @param n number of completions (siblings share the prompt's KV blocks)
 * @param maxTokens new tokens at most; 0 means up to the context length
 * @param temperature 0 for greedy
 * @param topK 0 or -1 for all tokens
 * @param seed per-request seed; null for a random one
 * @param stop strings that end generation (not returned)
 * @param stopTokenIds tokens that end generation, besides EOS
 * @param logprobs top alternatives to report per token; -1 for no logprobs
 * @param grammar the shape the output must have (structured output, tool calls); null for free text
 * @param logitBias added to the named tokens' logits before anything else (OpenAI's logit_bias)
 * @param minTokens new tokens before EOS, a stop token or a stop string may end the output (vLLM's min_tokens)
 * @param promptLogprobs top alternatives to report per prompt token (the logprob of each prompt token given
 *        the ones before it); -1 for none. Such a request computes its whole prompt: it reads no prefix cache
 * @param cacheSalt vLLM's cache_salt: the request shares prefix-cache blocks only with requests of the same
 *        salt (tenants that must not learn, from response times, what others' prompts begin with); null for none
 * @param allowedTokenIds vLLM's allowed_token_ids: sampling draws only from these tokens (EOS too only when
 *        listed); null for all
 * @param includeStopStrInOutput vLLM's include_stop_str_in_output: a stop string, or a stop token's text,
 *        stays at the end of the output instead of being cut
 * @param reasoning with a grammar: the model may reason first (a reasoning block, free text), and the grammar
 *        holds from the token after the block's end; null: the grammar holds from the first token
 * @param embed nothing is sampled: the request's output is the final hidden state of its last prompt token
 *        (after the final norm), L2-normalised: last-token pooling, as embedding checkpoints of these families
 *        (Qwen3-Embedding, gte-Qwen2, e5-mistral) are pooled
 * @param badWords vLLM's bad_words, as token sequences: the last token of a sequence is banned wherever the
 *        output's latest tokens equal the rest of it (a one-token word is banned everywhere); empty for none
 */
public record SamplingParams(int n, int maxTokens, double temperature, int topK, double topP, double minP,
		double presencePenalty, double frequencyPenalty, double repetitionPenalty, Long seed, List<String> stop,
		int[] stopTokenIds, boolean ignoreEos, int logprobs, boolean skipSpecialTokens, Grammar grammar,
		LogitBias logitBias, int minTokens, int promptLogprobs, String cacheSalt, int[] allowedTokenIds,
		boolean includeStopStrInOutput, Reasoning reasoning, boolean embed, int[][] badWords) {

	/**
	 * How a reasoning block comes before the grammar's output (vLLM's structured outputs behind a reasoning
	 * parser): {@code open} when the prompt already opened the block; else the block is opened by the answer's
	 * first token {@code openToken} (the tag as one token; -1 when the vocabulary has no such token, and then
	 * only an open block is possible); the block ends once the text contains {@code end}.
	 */
	public record Reasoning(boolean open, int openToken, String end) {

		public Reasoning {
			check(end != null && !end.isEmpty(), "a reasoning block needs its end tag");
		}
	}

	/** The most bad_words entries a request may give: each is checked per sampled token. */
	public static final int MAX_BAD_WORDS = 256;

	/** The longest cache salt: it is hashed on the engine thread when the request is admitted. */
	public static final int MAX_CACHE_SALT_LENGTH = 4096;

	/** Token ids and the values added to their logits, in two parallel arrays (walked per token without boxing). */
	public record LogitBias(int[] ids, float[] values) {

		public static final LogitBias NONE = new LogitBias(new int[0], new float[0]);

		public LogitBias {
			ids = ids.clone();
			values = values.clone();
			check(ids.length == values.length, "logit_bias: as many values as token ids");
			for (int i = 0; i < ids.length; i++) {
				check(ids[i] >= 0, "logit_bias: token ids must be >= 0, got " + ids[i]);
				check(values[i] >= -100 && values[i] <= 100,
						"logit_bias: values must be between -100 and 100, got " + values[i] + " for token " + ids[i]);
			}
		}

		/** From a map of token id to bias, in the map's order. */
		public static LogitBias of(java.util.Map<Integer, ? extends Number> bias) {
			int[] ids = new int[bias.size()];
			float[] values = new float[bias.size()];
			int i = 0;
			for (var e : bias.entrySet()) {
				ids[i] = e.getKey();
				values[i++] = e.getValue().floatValue();
			}
			return new LogitBias(ids, values);
		}

		public boolean isEmpty() {
			return ids.length == 0;
		}
	}

	public SamplingParams {
		check(n >= 1 && n <= 128, "n must be between 1 and 128, got " + n);
		check(maxTokens >= 0, "max_tokens must be >= 0, got " + maxTokens);
		check(temperature >= 0 && temperature <= 100 && Double.isFinite(temperature),
				"temperature must be between 0 and 100, got " + temperature);
		check(topK >= -1, "top_k must be -1, 0 or positive, got " + topK);
		check(topP > 0 && topP <= 1, "top_p must be in (0, 1], got " + topP);
		check(minP >= 0 && minP <= 1, "min_p must be in [0, 1], got " + minP);
		check(presencePenalty >= -2 && presencePenalty <= 2, "presence_penalty must be in [-2, 2], got " + presencePenalty);
		check(frequencyPenalty >= -2 && frequencyPenalty <= 2,
				"frequency_penalty must be in [-2, 2], got " + frequencyPenalty);
		check(repetitionPenalty > 0 && repetitionPenalty <= 10 && Double.isFinite(repetitionPenalty),
				"repetition_penalty must be in (0, 10], got " + repetitionPenalty);
		check(logprobs >= -1 && logprobs <= 20, "logprobs must be between 0 and 20, got " + logprobs);
		check(promptLogprobs >= -1 && promptLogprobs <= 20, "prompt logprobs must be between 0 and 20, got " + promptLogprobs);
		stop = stop == null ? List.of() : List.copyOf(stop);
		for (String s : stop) {
			check(s != null && !s.isEmpty(), "stop strings must not be empty");
		}
		check(stop.size() <= 16, "at most 16 stop strings, got " + stop.size());
		stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
		for (int t : stopTokenIds) {
			check(t >= 0, "stop_token_ids must be >= 0, got " + t);
		}
		logitBias = logitBias == null ? LogitBias.NONE : logitBias;
		check(minTokens >= 0, "min_tokens must be >= 0, got " + minTokens);
		check(maxTokens == 0 || minTokens <= maxTokens,
				"min_tokens must be less than or equal to max_tokens, got " + minTokens + " > " + maxTokens);
		check(cacheSalt == null || (!cacheSalt.isEmpty() && cacheSalt.length() <= MAX_CACHE_SALT_LENGTH),
				"cache_salt must be a non-empty string of at most " + MAX_CACHE_SALT_LENGTH + " characters");
		check(!embed || (n == 1 && logprobs < 0 && promptLogprobs < 0 && grammar == null),
				"an embedding request samples nothing: n 1, no logprobs, no grammar");
		check(reasoning == null || grammar != null, "reasoning before a grammar needs the grammar");
		badWords = badWords == null ? new int[0][] : badWords.clone();
		check(badWords.length <= MAX_BAD_WORDS, "at most " + MAX_BAD_WORDS + " bad_words, got " + badWords.length);
		for (int i = 0; i < badWords.length; i++) {
			check(badWords[i] != null && badWords[i].length > 0, "bad_words must not be empty");
			badWords[i] = badWords[i].clone();
			for (int t : badWords[i]) {
				check(t >= 0, "bad_words token ids must be >= 0, got " + t);
			}
		}
		if (allowedTokenIds != null) {
			allowedTokenIds = allowedTokenIds.clone();
			check(allowedTokenIds.length > 0, "allowed_token_ids must not be empty");
			for (int t : allowedTokenIds) {
				check(t >= 0, "allowed_token_ids must be >= 0, got " + t);
			}
		}
	}

	private static void check(boolean ok, String message) {
		if (!ok) {
			throw new IllegalArgumentException(message);
		}
	}

	/** Greedy decoding of at most {@code maxTokens} new tokens, everything else at its default. */
	public static SamplingParams greedy(int maxTokens) {
		return builder().temperature(0).maxTokens(maxTokens).build();
	}

	/** OpenAI's and vLLM's defaults: n 1, temperature 1, no truncation, no penalties, no logprobs. */
	public static Builder builder() {
		return new Builder();
	}

	/** A builder starting from these values. */
	public Builder toBuilder() {
		Builder b = new Builder();
		b.n = n;
		b.maxTokens = maxTokens;
		b.temperature = temperature;
		b.topK = topK;
		b.topP = topP;
		b.minP = minP;
		b.presencePenalty = presencePenalty;
		b.frequencyPenalty = frequencyPenalty;
		b.repetitionPenalty = repetitionPenalty;
		b.seed = seed;
		b.stop = stop;
		b.stopTokenIds = stopTokenIds;
		b.ignoreEos = ignoreEos;
		b.logprobs = logprobs;
		b.skipSpecialTokens = skipSpecialTokens;
		b.grammar = grammar;
		b.logitBias = logitBias;
		b.minTokens = minTokens;
		b.promptLogprobs = promptLogprobs;
		b.cacheSalt = cacheSalt;
		b.embed = embed;
		b.reasoning = reasoning;
		b.allowedTokenIds = allowedTokenIds;
		b.includeStopStrInOutput = includeStopStrInOutput;
		b.badWords = badWords;
		return b;
	}

	public boolean isGreedy() {
		return temperature == 0;
	}

	/** Whether sampling needs the whole logits row on the host, or the backend's argmax is enough. */
	public boolean needsLogitsRow() {
		return grammar != null || allowedTokenIds != null || !isGreedy() || logprobs >= 0 || repetitionPenalty != 1 || presencePenalty != 0
				|| frequencyPenalty != 0 || !logitBias.isEmpty() || badWords.length > 0;
	}

	/** Builds {@link SamplingParams}; {@link #build} validates. Not thread-safe (a local of one caller). */
	public static final class Builder {

		private int n = 1;

		private int maxTokens;

		private double temperature = 1.0;

		private int topK = -1;

		private double topP = 1.0;

		private double minP;

		private double presencePenalty;

		private double frequencyPenalty;

		private double repetitionPenalty = 1.0;

		private Long seed;

		private List<String> stop = List.of();

		private int[] stopTokenIds;

		private boolean ignoreEos;

		private int logprobs = -1;

		private boolean skipSpecialTokens = true;

		private Grammar grammar;

		private LogitBias logitBias = LogitBias.NONE;

		private int minTokens;

		private int promptLogprobs = -1;

		private String cacheSalt;

		private boolean embed;

		private Reasoning reasoning;

		private int[] allowedTokenIds;

		private boolean includeStopStrInOutput;

		private int[][] badWords;

		private Builder() {
		}

		public Builder n(int v) {
			n = v;
			return this;
		}

		/** 0 means up to the context length. */
		public Builder maxTokens(int v) {
			maxTokens = v;
			return this;
		}

		public Builder temperature(double v) {
			temperature = v;
			return this;
		}

		public Builder topK(int v) {
			topK = v;
			return this;
		}

		public Builder topP(double v) {
			topP = v;
			return this;
		}

		public Builder minP(double v) {
			minP = v;
			return this;
		}

		public Builder presencePenalty(double v) {
			presencePenalty = v;
			return this;
		}

		public Builder frequencyPenalty(double v) {
			frequencyPenalty = v;
			return this;
		}

		public Builder repetitionPenalty(double v) {
			repetitionPenalty = v;
			return this;
		}

		public Builder seed(Long v) {
			seed = v;
			return this;
		}

		public Builder stop(List<String> v) {
			stop = v;
			return this;
		}

		public Builder stopTokenIds(int[] v) {
			stopTokenIds = v;
			return this;
		}

		public Builder ignoreEos(boolean v) {
			ignoreEos = v;
			return this;
		}

		/** Top alternatives to report per token; -1 for no logprobs. */
		public Builder logprobs(int v) {
			logprobs = v;
			return this;
		}

		public Builder skipSpecialTokens(boolean v) {
			skipSpecialTokens = v;
			return this;
		}

		/** The output must match this grammar; null for free text. */
		public Builder grammar(Grammar v) {
			grammar = v;
			return this;
		}

		public Builder logitBias(LogitBias v) {
			logitBias = v;
			return this;
		}

		/** New tokens before EOS, a stop token or a stop string may end the output. */
		public Builder minTokens(int v) {
			minTokens = v;
			return this;
		}

		/** Top alternatives to report per prompt token; -1 for no prompt logprobs. */
		public Builder promptLogprobs(int v) {
			promptLogprobs = v;
			return this;
		}

		/** Shares prefix-cache blocks only with requests of the same salt; null for the common cache. */
		public Builder cacheSalt(String v) {
			cacheSalt = v;
			return this;
		}

		/** Sampling draws only from these tokens; null for all. */
		public Builder allowedTokenIds(int[] v) {
			allowedTokenIds = v;
			return this;
		}

		/** A stop string, or a stop token's text, stays at the end of the output. */
		public Builder includeStopStrInOutput(boolean v) {
			includeStopStrInOutput = v;
			return this;
		}

		/** A reasoning block may come before the grammar's output; null: the grammar holds from the first token. */
		public Builder reasoning(Reasoning v) {
			reasoning = v;
			return this;
		}

		/** The output is the pooled, normalised final hidden state of the prompt's last token; nothing is sampled. */
		public Builder embed(boolean v) {
			embed = v;
			return this;
		}

		/** Token sequences whose last token may not complete them in the output; null for none. */
		public Builder badWords(int[][] v) {
			badWords = v;
			return this;
		}

		public SamplingParams build() {
			return new SamplingParams(n, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
					repetitionPenalty, seed, stop, stopTokenIds, ignoreEos, logprobs, skipSpecialTokens, grammar,
					logitBias, minTokens, promptLogprobs, cacheSalt, allowedTokenIds, includeStopStrInOutput, reasoning, embed,
					badWords);
		}
	}
}
