package dev.blockserve.engine;

import java.util.List;

/**
 * One piece of a request's output stream: for choice {@code index}, the text and token ids the last step
 * added (with their logprobs when asked). The last event of each choice carries its finish reason and
 * the token counts; earlier ones have null. The first event of each choice carries the prompt logprobs
 * when they were asked (one entry per prompt token, the first null), else null. An embedding request's one
 * event before its last carries the embedding (else null). Immutable once sent: made on the engine thread,
 * read on others.
 */
public record GenerationEvent(int index, String text, int[] tokenIds, List<TokenLogprob> logprobs,
		FinishReason finishReason, int promptTokens, int completionTokens, int cachedPromptTokens,
		List<TokenLogprob> promptLogprobs, float[] embedding) {

	public GenerationEvent(int index, String text, int[] tokenIds, List<TokenLogprob> logprobs,
			FinishReason finishReason, int promptTokens, int completionTokens, int cachedPromptTokens,
			List<TokenLogprob> promptLogprobs) {
		this(index, text, tokenIds, logprobs, finishReason, promptTokens, completionTokens, cachedPromptTokens,
				promptLogprobs, null);
	}

	/**
	 * A token's logprob under the raw model distribution and its rank there (1 for the likeliest), with the
	 * top alternatives; texts are what each token adds to the text at that point (decoded in context).
	 */
	public record TokenLogprob(int token, String text, float logprob, int rank, int[] topTokens, String[] topTexts,
			float[] topLogprobs) {
	}

	public boolean finished() {
		return finishReason != null;
	}
}
