package dev.blockserve.engine;

/** A request failed inside the engine (a backend error during its step, or shutdown). Made on the engine thread, delivered to the request's subscriber. */
public class EngineException extends RuntimeException {

	public EngineException(String message, Throwable cause) {
		super(message, cause);
	}
}
