package dev.blockserve.engine;

import java.util.SplittableRandom;

import dev.blockserve.constraint.GrammarMatcher;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.Sequence;

/**
 * A scheduled sequence plus what the output processor needs to sample, detokenise and stream it: one
 * choice of a request. Owned by the engine thread.
 */
final class EngineSequence extends Sequence {

	final Request request;

	/** The choice index within the request. */
	final int index;

	final SplittableRandom rng;

	/** Null when the engine has no tokenizer (token ids only). */
	final IncrementalDetokenizer detok;

	final StopChecker stop;

	final Sampler.Logprobs logprobs = new Sampler.Logprobs();

	/** Where this choice stands in the request's grammar; null for free text. */
	final GrammarMatcher matcher;

	/** Before a grammar: whether the answer may still open a reasoning block, is inside one, or is past it. */
	enum Phase {
		MAY_OPEN, REASONING, GRAMMAR
	}

	Phase phase;

	/**
	 * While {@link Phase#REASONING}: the last text that may still be the start of the block's end tag (at most
	 * the tag's length less one, kept in place: no string per token).
	 */
	final StringBuilder reasoningTail = new StringBuilder();

	long lastTokenNanos;

	/**
	 * The next prompt position whose logprob is due (prompt logprobs); the positions before it were reported.
	 * Only moves forward, so a sequence recomputed after preemption reports none twice.
	 */
	int promptTarget = 1;

	/** Texts of the prompt tokens for their logprob entries; made at the first such entry, dropped after the last. */
	IncrementalDetokenizer promptDetok;

	EngineSequence(long id, Request request, long seed, TextTokenizer tokenizer) {
		super(id, request.prompt, request.priority, request.arrivalNanos);
		this.request = request;
		this.index = 0;
		this.rng = new SplittableRandom(seed);
		this.detok = detokenizer(tokenizer, request);
		this.stop = new StopChecker(request.params.stop(), request.params.includeStopStrInOutput());
		this.matcher = request.grammar == null ? null : request.grammar.matcher();
		SamplingParams.Reasoning r = request.params.reasoning();
		this.phase = r == null || matcher == null ? Phase.GRAMMAR
				: r.open() ? Phase.REASONING : r.openToken() >= 0 ? Phase.MAY_OPEN : Phase.GRAMMAR;
	}

	/** Choice {@code index} of {@code parent}'s request, forked after the prompt. */
	EngineSequence(long id, EngineSequence parent, int index, long seed, TextTokenizer tokenizer) {
		super(id, parent);
		this.request = parent.request;
		this.index = index;
		this.rng = new SplittableRandom(seed);
		this.detok = detokenizer(tokenizer, request);
		this.stop = new StopChecker(request.params.stop(), request.params.includeStopStrInOutput());
		this.matcher = parent.matcher == null ? null : parent.matcher.fork();
		this.promptTarget = parent.promptTarget;
		this.phase = parent.phase;
		this.reasoningTail.append(parent.reasoningTail);
	}

	private static IncrementalDetokenizer detokenizer(TextTokenizer tokenizer, Request r) {
		return tokenizer == null ? null : new IncrementalDetokenizer(tokenizer, r.prompt, r.params.skipSpecialTokens());
	}

	/** Whether a step that computes {@code numNew} more tokens ends an embedding request's prompt (its pooled row is due). */
	boolean needsHiddenRowAfter(int numNew) {
		return request.params.embed() && numComputed() + numNew == numTokens();
	}

	/** Whether, after a step that computes {@code numNew} more tokens, sampling needs the logits row on the host. */
	boolean needsLogitsRowAfter(int numNew) {
		if (numComputed() + numNew < numTokens() || request.params.embed()) {
			return false; // a prefill chunk short of the prompt's end, or an embedding: nothing is sampled
		}
		return request.params.needsLogitsRow() || numOutputTokens() < request.params.minTokens() // EOS masked
				|| (numOutputTokens() == 0 && request.output.wantsFirstLogits());
	}

	/**
	 * Drafts this sequence may verify in its next step: any generating sequence past its first token (the
	 * first is sampled after the prompt, where siblings fork), at most the output tokens it has left, less the
	 * one the step makes anyway. Its max_tokens already keeps it within the model's context.
	 */
	@Override
	public int maxDrafts() {
		if (request.params.embed() || numOutputTokens() < 1) {
			return 0;
		}
		return Math.max(0, request.maxTokens - numOutputTokens() - 1);
	}

	/** How many drafts a step that computes {@code numNew} more tokens verifies (the tokens past the sequence's end). */
	int draftsIn(int numNew) {
		return Math.max(0, numComputed() + numNew - numTokens());
	}

	/** Prompt logprobs still due: the prefix cache would skip the positions they come from. */
	@Override
	public boolean readsPrefixCache() {
		return request.params.promptLogprobs() < 0 || promptTarget >= promptLength();
	}

	@Override
	public String cacheSalt() {
		return request.params.cacheSalt();
	}

	/**
	 * How many prompt logprobs a step that computes {@code numNew} tokens from {@code numComputed()} on
	 * makes due: the rows at positions {@link #firstPromptLogprobRow()} on, each giving the logprob of the
	 * prompt token after it.
	 */
	int promptLogprobRows(int numNew) {
		if (request.params.promptLogprobs() < 0 || promptTarget >= promptLength()) {
			return 0;
		}
		int end = Math.min(numComputed() + numNew, promptLength() - 1); // the last prompt row predicts no prompt token
		return Math.max(0, end - firstPromptLogprobRow());
	}

	/** The first position of this step whose row is due for a prompt logprob. */
	int firstPromptLogprobRow() {
		return Math.max(numComputed(), promptTarget - 1);
	}

	/** The first sample of a request with n > 1 creates its siblings first. */
	boolean forksNow() {
		return numOutputTokens() == 0 && request.params.n() > 1 && request.seqs.size() == 1;
	}
}
