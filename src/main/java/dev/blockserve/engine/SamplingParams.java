package dev.blockserve.engine;

import java.util.List;

/**
 * How one request samples and stops. Validated on construction: a bad value fails with a message naming
 * the field, which the HTTP layer turns into a 400.
 *
 * @param n number of completions (siblings share the prompt's KV blocks)
 * @param maxTokens new tokens at most; 0 means up to the context length
 * @param temperature 0 for greedy
 * @param topK 0 or -1 for all tokens
 * @param seed per-request seed; null for a random one
 * @param stop strings that end generation (not returned)
 * @param stopTokenIds tokens that end generation, besides EOS
 * @param logprobs top alternatives to report per token; -1 for no logprobs
 */
public record SamplingParams(int n, int maxTokens, double temperature, int topK, double topP, double minP,
		double presencePenalty, double frequencyPenalty, double repetitionPenalty, Long seed, List<String> stop,
		int[] stopTokenIds, boolean ignoreEos, int logprobs, boolean skipSpecialTokens) {

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
		stop = stop == null ? List.of() : List.copyOf(stop);
		for (String s : stop) {
			check(s != null && !s.isEmpty(), "stop strings must not be empty");
		}
		check(stop.size() <= 16, "at most 16 stop strings, got " + stop.size());
		stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
	}

	private static void check(boolean ok, String message) {
		if (!ok) {
			throw new IllegalArgumentException(message);
		}
	}

	public static SamplingParams greedy(int maxTokens) {
		return new SamplingParams(1, maxTokens, 0, -1, 1, 0, 0, 0, 1, null, List.of(), null, false, -1, true);
	}

	public boolean isGreedy() {
		return temperature == 0;
	}

	/** Whether sampling needs the whole logits row on the host, or the backend's argmax is enough. */
	public boolean needsLogitsRow() {
		return !isGreedy() || logprobs >= 0 || repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0;
	}

	public SamplingParams withIgnoreEos(boolean ignore) {
		return new SamplingParams(n, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
				repetitionPenalty, seed, stop, stopTokenIds, ignore, logprobs, skipSpecialTokens);
	}

	public SamplingParams withSeed(Long s) {
		return new SamplingParams(n, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
				repetitionPenalty, s, stop, stopTokenIds, ignoreEos, logprobs, skipSpecialTokens);
	}

	public SamplingParams withN(int count) {
		return new SamplingParams(count, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
				repetitionPenalty, seed, stop, stopTokenIds, ignoreEos, logprobs, skipSpecialTokens);
	}

	public SamplingParams withLogprobs(int k) {
		return new SamplingParams(n, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
				repetitionPenalty, seed, stop, stopTokenIds, ignoreEos, k, skipSpecialTokens);
	}

	public SamplingParams withStop(List<String> s) {
		return new SamplingParams(n, maxTokens, temperature, topK, topP, minP, presencePenalty, frequencyPenalty,
				repetitionPenalty, seed, s, stopTokenIds, ignoreEos, logprobs, skipSpecialTokens);
	}
}
