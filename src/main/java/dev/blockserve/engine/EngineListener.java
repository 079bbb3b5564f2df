package dev.blockserve.engine;

/**
 * Observes the engine for metrics. Called on the engine thread: implementations must be quick and must
 * not block (counters, histograms).
 */
public interface EngineListener {

	/** A forward step ran {@code tokens} tokens of {@code seqs} sequences in {@code nanos}. */
	default void onStep(int tokens, int seqs, long nanos) {
	}

	default void onPreemption() {
	}

	/**
	 * A request's first token (once per request, whatever its n): queue time (arrival to first scheduled),
	 * time to first token, prefill time (first scheduled to first token), and its prompt length.
	 */
	default void onFirstToken(long queueNanos, long ttftNanos, long prefillNanos, int promptTokens) {
	}

	/** Every generated token; {@code interTokenNanos} is the gap since the sequence's previous token, or -1. */
	default void onToken(long interTokenNanos) {
	}

	/** A choice finished; latencies from arrival, and its token counts. */
	default void onFinished(FinishReason finishReason, long e2eNanos, long decodeNanos, int promptTokens,
			int completionTokens) {
	}

	/**
	 * A request ended (all its choices): its prompt and generated tokens (all choices), its n and
	 * max_tokens, and the time from its first step to its end (vLLM's inference time).
	 */
	default void onRequestFinished(int promptTokens, int generationTokens, int n, int maxTokens, long inferenceNanos) {
	}

	/**
	 * A grammar mask was made for one constrained sequence in {@code nanos}: walked over the vocabulary
	 * ({@code computed}) or taken from the runtime's cache.
	 */
	default void onGrammarMask(long nanos, boolean computed) {
	}

	/** A step verified {@code drafted} draft tokens of one sequence and accepted the first {@code accepted}. */
	default void onSpeculation(int drafted, int accepted) {
	}

	EngineListener NONE = new EngineListener() {
	};
}
