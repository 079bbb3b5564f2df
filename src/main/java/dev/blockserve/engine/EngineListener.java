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

	/** A request's first token: queue time (arrival to first scheduled) and time to first token. */
	default void onFirstToken(long queueNanos, long ttftNanos, long prefillNanos) {
	}

	default void onToken(long interTokenNanos) {
	}

	/** A choice finished; latencies from arrival, and its token counts. */
	default void onFinished(String finishReason, long e2eNanos, long decodeNanos, int promptTokens,
			int completionTokens) {
	}

	EngineListener NONE = new EngineListener() {
	};
}
