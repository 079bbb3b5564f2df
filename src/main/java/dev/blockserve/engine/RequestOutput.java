package dev.blockserve.engine;

/**
 * Where the engine core delivers one request's output. Called on the engine thread: implementations hand
 * the event on (a Reactor sink, a list) and return at once. After {@link #complete} or {@link #fail}
 * nothing more is called.
 */
public interface RequestOutput {

	/** The request ran in a step for the first time (it left the waiting queue). */
	default void scheduled() {
	}

	void event(GenerationEvent e);

	/** Every choice of the request has finished. */
	void complete();

	/** The request failed; its blocks are already freed. */
	void fail(EngineException e);

	/** Whether {@link #firstLogits} should be called (golden checks); costs one logits download. */
	default boolean wantsFirstLogits() {
		return false;
	}

	/** The logits row that chose the first generated token, {@code row[offset..offset+vocab)}. */
	default void firstLogits(float[] row, int offset, int vocab) {
	}
}
