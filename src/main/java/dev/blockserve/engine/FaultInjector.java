package dev.blockserve.engine;

/**
 * A test hook: the engine core calls it at each stage of its work, and a test's implementation throws
 * to simulate a failure there, so isolation can be tested without a broken model. {@link #NONE} in
 * production. Called on the engine thread.
 */
public interface FaultInjector {

	/** Where in a step the hook is called. */
	enum Stage {
		/** before the forward pass (shared by the batch); {@code prompt} is null */
		FORWARD,
		/** before a sequence samples its next token */
		SAMPLE,
		/** before a sequence's token is detokenised */
		DETOKENIZE,
		/** before a sequence's stop conditions are checked */
		STOP_CHECK
	}

	void at(Stage stage, int[] prompt, SamplingParams params);

	FaultInjector NONE = (stage, prompt, params) -> {
	};
}
