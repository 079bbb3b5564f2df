package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.List;

/**
 * One request inside the engine core: its prompt and parameters, its choices (one sequence per choice,
 * siblings forked once the prompt is computed) and the times its metrics need. Owned by the engine thread.
 */
final class Request {

	final long id;

	final int[] prompt;

	final SamplingParams params;

	final int priority;

	final int maxTokens;

	final long arrivalNanos;

	final RequestOutput output;

	/** System.nanoTime() after which the request is ended with a timeout; 0 for none. */
	final long deadlineNanos;

	final List<EngineSequence> seqs = new ArrayList<>(1);

	/** The grammar's automaton and mask cache, shared by the choices; null for free text. */
	dev.blockserve.constraint.GrammarRuntime grammar;

	int cachedPromptTokens = -1;

	/** allowed_token_ids as a vocabulary bitset, made at the first sample; null until then, or when not asked. */
	long[] allowedMask;

	/** Prompt logprobs, one per prompt position ([0] stays null: nothing comes before it); null when not asked. */
	final GenerationEvent.TokenLogprob[] promptLogprobs;

	long firstScheduledNanos;

	long firstTokenNanos;

	Request(long id, int[] prompt, SamplingParams params, int priority, int maxTokens, long arrivalNanos,
			long deadlineNanos, RequestOutput output) {
		this.deadlineNanos = deadlineNanos;
		this.id = id;
		this.prompt = prompt;
		this.params = params;
		this.priority = priority;
		this.maxTokens = maxTokens;
		this.arrivalNanos = arrivalNanos;
		this.output = output;
		this.promptLogprobs = params.promptLogprobs() >= 0 ? new GenerationEvent.TokenLogprob[prompt.length] : null;
	}

	/** Records the first step that ran this request, and how much of its prompt the prefix cache held. */
	void scheduled(long nanos, int computedTokens) {
		if (firstScheduledNanos == 0) {
			firstScheduledNanos = nanos;
			output.scheduled();
		}
		if (cachedPromptTokens < 0) {
			cachedPromptTokens = computedTokens;
		}
	}

	boolean allFinished() {
		for (EngineSequence s : seqs) {
			if (s.status() != dev.blockserve.scheduler.Sequence.Status.FINISHED) {
				return false;
			}
		}
		return true;
	}
}
