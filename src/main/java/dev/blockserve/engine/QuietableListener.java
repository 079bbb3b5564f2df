package dev.blockserve.engine;

/**
 * The engine's listener, switched off while the engine runs requests that are not the server's traffic
 * (its start-up warm-up through HTTP), so that they are not counted. Owned by the engine thread.
 */
final class QuietableListener implements EngineListener {

	private final EngineListener metrics;

	boolean quiet;

	QuietableListener(EngineListener metrics) {
		this.metrics = metrics;
	}

	@Override
	public void onStep(int tokens, int seqs, long nanos) {
		if (!quiet) {
			metrics.onStep(tokens, seqs, nanos);
		}
	}

	@Override
	public void onPreemption() {
		if (!quiet) {
			metrics.onPreemption();
		}
	}

	@Override
	public void onFirstToken(long queueNanos, long ttftNanos, long prefillNanos, int promptTokens) {
		if (!quiet) {
			metrics.onFirstToken(queueNanos, ttftNanos, prefillNanos, promptTokens);
		}
	}

	@Override
	public void onToken(long interTokenNanos) {
		if (!quiet) {
			metrics.onToken(interTokenNanos);
		}
	}

	@Override
	public void onFinished(FinishReason finishReason, long e2eNanos, long decodeNanos, int promptTokens,
			int completionTokens) {
		if (!quiet) {
			metrics.onFinished(finishReason, e2eNanos, decodeNanos, promptTokens, completionTokens);
		}
	}

	@Override
	public void onRequestFinished(int promptTokens, int generationTokens, int n, int maxTokens,
			long inferenceNanos) {
		if (!quiet) {
			metrics.onRequestFinished(promptTokens, generationTokens, n, maxTokens, inferenceNanos);
		}
	}

	@Override
	public void onGrammarMask(long nanos, boolean computed) {
		if (!quiet) {
			metrics.onGrammarMask(nanos, computed);
		}
	}

	@Override
	public void onSpeculation(int drafted, int accepted) {
		if (!quiet) {
			metrics.onSpeculation(drafted, accepted);
		}
	}
}
