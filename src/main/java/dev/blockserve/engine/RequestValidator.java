package dev.blockserve.engine;

import dev.blockserve.kvcache.KvCacheManager;

/**
 * The rules a request must meet to ever run: a non-empty prompt of known tokens (and known tokens in
 * logit_bias and stop_token_ids), prompt plus max_tokens within the context, and a KV footprint the whole
 * pool could hold. Immutable, so submitting threads
 * check requests before anything is queued.
 */
final class RequestValidator {

	private final int vocab;

	private final int maxModelLen;

	private final int blockSize;

	private final int numBlocks;

	private final boolean hasTokenizer;

	RequestValidator(int vocab, int maxModelLen, int blockSize, int numBlocks, boolean hasTokenizer) {
		this.vocab = vocab;
		this.maxModelLen = maxModelLen;
		this.blockSize = blockSize;
		this.numBlocks = numBlocks;
		this.hasTokenizer = hasTokenizer;
	}

	/** @return the request's effective max_tokens (the rest of the context when it gave none) */
	int validate(int[] prompt, SamplingParams params) {
		if (prompt.length == 0) {
			throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
					"the prompt must contain at least one token");
		}
		for (int t : prompt) {
			if (t < 0 || t >= vocab) {
				throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
						"token id " + t + " is outside the vocabulary [0, " + vocab + ")");
			}
		}
		for (int t : params.logitBias().ids()) {
			if (t >= vocab) {
				throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
						"logit_bias: token id " + t + " is outside the vocabulary [0, " + vocab + ")", "logit_bias");
			}
		}
		if (params.allowedTokenIds() != null) {
			for (int t : params.allowedTokenIds()) {
				if (t >= vocab) {
					throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
							"allowed_token_ids: token id " + t + " is outside the vocabulary [0, " + vocab + ")", "allowed_token_ids");
				}
			}
		}
		for (int[] word : params.badWords()) {
			for (int t : word) {
				if (t >= vocab) {
					throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
							"bad_words: token id " + t + " is outside the vocabulary [0, " + vocab + ")", "bad_words");
				}
			}
		}
		for (int t : params.stopTokenIds()) {
			if (t >= vocab) {
				throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
						"stop_token_ids: token id " + t + " is outside the vocabulary [0, " + vocab + ")", "stop_token_ids");
			}
		}
		if (!hasTokenizer && !params.stop().isEmpty()) {
			throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
					"stop strings need a tokenizer, and this engine has none");
		}
		if (!hasTokenizer && params.grammar() != null) {
			throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT,
					"structured output needs a tokenizer, and this engine has none");
		}
		if (params.embed()) {
			if (prompt.length > maxModelLen) {
				throw new RequestRejectedException(RequestRejectedException.Reason.CONTEXT_LENGTH_EXCEEDED,
						"This model's maximum context length is " + maxModelLen + " tokens. However, the input has "
								+ prompt.length + " tokens. Please shorten it, or send truncate_prompt_tokens.");
			}
			int blocks = KvCacheManager.blocksFor(prompt.length, blockSize);
			if (blocks > numBlocks) {
				throw new RequestRejectedException(RequestRejectedException.Reason.EXCEEDS_KV_CACHE,
						"the input needs " + blocks + " KV cache blocks (" + prompt.length + " tokens), but the cache holds only "
								+ numBlocks + "; shorten it");
			}
			return 0; // nothing is generated
		}
		int maxTokens = params.maxTokens() > 0 ? params.maxTokens() : maxModelLen - prompt.length;
		if (prompt.length + maxTokens > maxModelLen || maxTokens <= 0) {
			int asked = Math.max(maxTokens, 0);
			throw new RequestRejectedException(RequestRejectedException.Reason.CONTEXT_LENGTH_EXCEEDED,
					"This model's maximum context length is " + maxModelLen + " tokens. However, you requested "
							+ (prompt.length + asked) + " tokens (" + prompt.length + " in the prompt, " + asked
							+ " for the completion). Please reduce the length of the prompt or of max_tokens.");
		}
		int blocks = KvCacheManager.blocksFor(prompt.length + maxTokens, blockSize);
		if (blocks > numBlocks) {
			throw new RequestRejectedException(RequestRejectedException.Reason.EXCEEDS_KV_CACHE,
					"the request needs up to " + blocks + " KV cache blocks (" + (prompt.length + maxTokens)
							+ " tokens), but the cache holds only " + numBlocks + "; reduce max_tokens or the prompt");
		}
		return maxTokens;
	}
}
