package dev.blockserve.engine;

/**
 * The engine takes no request now: its waiting queue is full ({@link #overloaded()}: try again soon), or
 * it is down (stalled, failed, shut down: try another replica). Thrown on the submitting thread.
 */
public final class EngineUnavailableException extends RuntimeException {

	private final boolean overloaded;

	private final int retryAfterSeconds;

	public EngineUnavailableException(String message, boolean overloaded, int retryAfterSeconds) {
		super(message);
		this.overloaded = overloaded;
		this.retryAfterSeconds = retryAfterSeconds;
	}

	public boolean overloaded() {
		return overloaded;
	}

	public int retryAfterSeconds() {
		return retryAfterSeconds;
	}
}
