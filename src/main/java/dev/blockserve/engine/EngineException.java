package dev.blockserve.engine;

/** A request failed inside the engine (a backend error during its step, or shutdown). */
public class EngineException extends RuntimeException {

	public EngineException(String message, Throwable cause) {
		super(message, cause);
	}
}
