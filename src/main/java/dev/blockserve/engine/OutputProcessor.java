package dev.blockserve.engine;

import java.util.List;

import dev.blockserve.model.GenerationConfig;

/**
 * Turns one sequence's model output into its next token and its events: sampling (or the backend's
 * greedy token when no logits row is needed), logprobs, incremental detokenising, stop strings, EOS,
 * stop tokens and length, and the first-token and inter-token times for the metrics. It decides that a
 * sequence finishes; the engine core then frees it. Owned by the engine thread.
 */
final class OutputProcessor {

	/** Weight of the older average in the dashboard's moving TTFT: about the last five requests count. */
	private static final double TTFT_EWMA_DECAY = 0.8;

	private final Sampler sampler;

	private final GenerationConfig generation;

	private final int maxModelLen;

	private final int vocab;

	private final QuietableListener listener;

	private FaultInjector faults = FaultInjector.NONE;

	private long generatedTokens;

	private long promptTokens;

	private double recentTtftMillis;

	/** Every token but EOS: what a reasoning block before a grammar may hold (it must end before the output may). */
	private final long[] reasoningMask;

	/** Scratch for a grammar's mask plus the token that opens a reasoning block. */
	private final long[] openingMask;

	/** Scratch for a mask restricted to a request's allowed_token_ids. */
	private final long[] restrictedMask;

	OutputProcessor(int vocab, GenerationConfig generation, int maxModelLen, QuietableListener listener) {
		this.sampler = new Sampler(vocab, generation.eosTokenIds());
		this.vocab = vocab;
		this.generation = generation;
		this.maxModelLen = maxModelLen;
		this.listener = listener;
		this.reasoningMask = new long[(vocab + 63) >>> 6];
		java.util.Arrays.fill(reasoningMask, -1L);
		for (int t : generation.eosTokenIds()) {
			if (t >= 0 && t < vocab) {
				reasoningMask[t >>> 6] &= ~(1L << t);
			}
		}
		this.openingMask = new long[reasoningMask.length];
		this.restrictedMask = new long[reasoningMask.length];
	}

	void faults(FaultInjector f) {
		faults = f;
	}

	/**
	 * Appends the next token of {@code s} and sends its event.
	 * @param logits the downloaded logits rows; {@code offset} is s's row, or -1 to take {@code greedy}
	 * @return why s finished with this token, or null when it goes on
	 */
	FinishReason process(EngineSequence s, float[] logits, int offset, int greedy, long now) {
		Request r = s.request;
		SamplingParams p = r.params;
		if (offset >= 0 && s.numOutputTokens() == 0 && r.output.wantsFirstLogits()) {
			r.output.firstLogits(logits, offset, vocab);
		}
		faults.at(FaultInjector.Stage.SAMPLE, r.prompt, p);
		long[] allowed = null;
		if (s.matcher != null && s.phase == EngineSequence.Phase.REASONING) {
			allowed = reasoningMask; // free text, but the block must end before the output may
		}
		else if (s.matcher != null) {
			var rt = s.matcher.runtime();
			long computedBefore = rt.maskComputations();
			long m0 = System.nanoTime();
			allowed = s.matcher.mask();
			listener.onGrammarMask(System.nanoTime() - m0, rt.maskComputations() != computedBefore);
			if (s.phase == EngineSequence.Phase.MAY_OPEN) { // the grammar's first token, or the block's opening
				System.arraycopy(allowed, 0, openingMask, 0, openingMask.length);
				int open = p.reasoning().openToken();
				openingMask[open >>> 6] |= 1L << open;
				allowed = openingMask;
			}
		}
		if (p.allowedTokenIds() != null) {
			allowed = restrict(r, allowed, s);
		}
		int token = offset >= 0
				? sampler.sample(logits, offset, p, s.tokens(), s.promptLength(), s.numTokens(), s.rng, s.logprobs, allowed)
				: greedy;
		if (s.phase == EngineSequence.Phase.MAY_OPEN) {
			s.phase = token == p.reasoning().openToken() ? EngineSequence.Phase.REASONING : EngineSequence.Phase.GRAMMAR;
		}
		if (s.matcher != null && s.phase == EngineSequence.Phase.GRAMMAR && !s.matcher.accept(token)) {
			throw new IllegalStateException("token " + token + " was sampled outside the request's grammar");
		}
		boolean reasoning = s.phase == EngineSequence.Phase.REASONING;
		s.append(token);
		recordTimes(s, now);
		List<GenerationEvent.TokenLogprob> lps = p.logprobs() >= 0 ? List.of(logprob(s, token)) : null;
		faults.at(FaultInjector.Stage.DETOKENIZE, r.prompt, p);
		// a stop token ends the output without its text, as vLLM leaves it out (EOS is a special token anyway)
		boolean stopToken = contains(p.stopTokenIds(), token);
		String delta = s.detok == null || (stopToken && !p.includeStopStrInOutput()) ? "" : s.detok.add(token);
		if (reasoning) {
			endReasoning(s, delta, p.reasoning().end());
		}
		faults.at(FaultInjector.Stage.STOP_CHECK, r.prompt, p);
		// stop strings count from min_tokens on, as vLLM's detokenizer checks them
		boolean stopString = s.stop.append(delta, s.numOutputTokens() > p.minTokens());
		FinishReason reason = null;
		if (stopString || stopToken || (!p.ignoreEos() && generation.isEos(token))) {
			reason = FinishReason.STOP;
		}
		else if (s.matcher != null && !reasoning && s.matcher.isTerminated()) {
			reason = FinishReason.STOP; // the grammar is complete: nothing but EOS could follow
		}
		else if (s.numOutputTokens() >= r.maxTokens || s.numTokens() >= maxModelLen) {
			reason = FinishReason.LENGTH;
		}
		if (reason != null && !stopString && s.detok != null) {
			s.stop.append(s.detok.flush());
		}
		List<GenerationEvent.TokenLogprob> promptLps = null;
		if (r.promptLogprobs != null && s.numOutputTokens() == 1) {
			if (r.promptLogprobs[0] == null) {
				firstPromptEntry(s); // a one-token prompt: no row made it
			}
			promptLps = java.util.Collections.unmodifiableList(java.util.Arrays.asList(r.promptLogprobs));
		}
		r.output.event(new GenerationEvent(s.index, s.stop.release(reason != null), new int[] { token }, lps, null,
				r.prompt.length, s.numOutputTokens(), Math.max(0, r.cachedPromptTokens), promptLps));
		return reason;
	}

	/**
	 * {@code allowed} (null: every token) limited to the request's allowed_token_ids.
	 * @throws UnsatisfiableRequestException when none of those ids is allowed here
	 */
	private long[] restrict(Request r, long[] allowed, EngineSequence s) {
		if (r.allowedMask == null) {
			long[] m = new long[restrictedMask.length];
			for (int t : r.params.allowedTokenIds()) {
				m[t >>> 6] |= 1L << t; // ids were checked against the vocabulary at submission
			}
			r.allowedMask = m;
		}
		if (allowed == null) {
			return r.allowedMask;
		}
		long any = 0;
		for (int w = 0; w < restrictedMask.length; w++) {
			restrictedMask[w] = allowed[w] & r.allowedMask[w];
			any |= restrictedMask[w];
		}
		if (any == 0) {
			throw new UnsatisfiableRequestException("allowed_token_ids leaves no token that the request's "
					+ (s.phase == EngineSequence.Phase.REASONING ? "reasoning block (which may not end with EOS)"
							: "structured output (response_format, guided decoding or tools)")
					+ " accepts after " + s.numOutputTokens() + " generated tokens");
		}
		return restrictedMask;
	}

	/**
	 * Moves a sequence past its reasoning block once its text contains the block's end: the grammar holds
	 * from the next token. Keeps only the tail that may still begin the end tag (the detokenizer may split it).
	 */
	private static void endReasoning(EngineSequence s, String delta, String end) {
		StringBuilder tail = s.reasoningTail;
		tail.append(delta);
		if (tail.indexOf(end) >= 0) {
			s.phase = EngineSequence.Phase.GRAMMAR;
			tail.setLength(0);
			return;
		}
		tail.delete(0, Math.max(0, tail.length() - (end.length() - 1)));
	}

	/**
	 * Sends an embedding request's vector: the final hidden row {@code hidden[offset..offset+size)} of its
	 * last prompt token, divided by its L2 norm (a zero row stays zero).
	 */
	void embedding(EngineSequence s, float[] hidden, int offset, int size) {
		Request r = s.request;
		float[] v = java.util.Arrays.copyOfRange(hidden, offset, offset + size);
		if (!dev.blockserve.backend.HostMath.normalizeL2(v, size)) {
			throw new IllegalStateException("the embedding is not finite");
		}
		r.output.event(new GenerationEvent(s.index, "", new int[0], null, null, r.prompt.length, 0,
				Math.max(0, r.cachedPromptTokens), null, v));
	}

	/**
	 * Records the logprob of prompt token {@code s.promptTarget} from the logits row at {@code offset} (the
	 * row of the position before it), with the top alternatives, and moves the target on.
	 */
	void promptLogprob(EngineSequence s, float[] logits, int offset) {
		Request r = s.request;
		int[] prompt = r.prompt;
		int j = s.promptTarget;
		if (j == 1) {
			firstPromptEntry(s);
		}
		Sampler.Logprobs lp = s.logprobs;
		sampler.logprobs(logits, offset, prompt[j], r.params.promptLogprobs(), lp);
		String[] topTexts = new String[lp.topIds.length];
		for (int k = 0; k < topTexts.length; k++) {
			topTexts[k] = s.promptDetok == null ? "" : s.promptDetok.peek(lp.topIds[k]);
		}
		String text = s.promptDetok == null ? "" : s.promptDetok.add(prompt[j]);
		r.promptLogprobs[j] = new GenerationEvent.TokenLogprob(prompt[j], text, lp.tokenLogprob, lp.tokenRank,
				lp.topIds.clone(), topTexts, lp.topLogprobs.clone());
		s.promptTarget = j + 1;
		if (s.promptTarget == prompt.length) {
			s.promptDetok = null;
		}
	}

	/** The first prompt token's entry: its text, and no logprob (NaN), since nothing comes before it. */
	private static void firstPromptEntry(EngineSequence s) {
		int first = s.request.prompt[0];
		s.promptDetok = s.detok == null ? null : s.detok.startingEmpty();
		s.request.promptLogprobs[0] = new GenerationEvent.TokenLogprob(first,
				s.promptDetok == null ? "" : s.promptDetok.add(first), Float.NaN, 0, new int[0], new String[0], new float[0]);
	}

	/** The event that ends a choice: no text, its finish reason and token counts. */
	static GenerationEvent finalEvent(EngineSequence s, FinishReason reason) {
		Request r = s.request;
		return new GenerationEvent(s.index, "", new int[0], null, reason, r.prompt.length, s.numOutputTokens(),
				Math.max(0, r.cachedPromptTokens), null);
	}

	private void recordTimes(EngineSequence s, long now) {
		Request r = s.request;
		boolean counted = !listener.quiet; // not the server's own warm-up
		if (s.numOutputTokens() == 1 && r.firstTokenNanos == 0) {
			r.firstTokenNanos = now;
			if (counted) {
				promptTokens += r.prompt.length;
				double ttftMs = (now - r.arrivalNanos) / 1e6;
				recentTtftMillis = recentTtftMillis == 0 ? ttftMs
						: TTFT_EWMA_DECAY * recentTtftMillis + (1 - TTFT_EWMA_DECAY) * ttftMs;
			}
			listener.onFirstToken(r.firstScheduledNanos - r.arrivalNanos, now - r.arrivalNanos,
					now - r.firstScheduledNanos, r.prompt.length);
		}
		if (counted) {
			generatedTokens++;
		}
		listener.onToken(s.numOutputTokens() == 1 ? -1 : now - s.lastTokenNanos);
		s.lastTokenNanos = now;
	}

	/** The token's logprob entry; texts are what each token would add at this point (decoded in context). */
	private static GenerationEvent.TokenLogprob logprob(EngineSequence s, int token) {
		Sampler.Logprobs lp = s.logprobs;
		String[] topTexts = new String[lp.topIds.length];
		for (int k = 0; k < topTexts.length; k++) {
			topTexts[k] = s.detok == null ? "" : s.detok.peek(lp.topIds[k]);
		}
		// peek the sampled token before it is added to the detokenizer: process() adds it right after
		String text = s.detok == null ? "" : s.detok.peek(token);
		return new GenerationEvent.TokenLogprob(token, text, lp.tokenLogprob, lp.tokenRank, lp.topIds.clone(), topTexts,
				lp.topLogprobs.clone());
	}

	private static boolean contains(int[] a, int v) {
		for (int x : a) {
			if (x == v) {
				return true;
			}
		}
		return false;
	}

	long generatedTokens() {
		return generatedTokens;
	}

	long promptTokens() {
		return promptTokens;
	}

	double recentTtftMillis() {
		return recentTtftMillis;
	}
}
