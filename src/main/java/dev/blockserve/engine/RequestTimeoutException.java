package dev.blockserve.engine;

/** A request ran past its deadline; the engine ended it and freed its blocks. Made on the engine thread. */
public final class RequestTimeoutException extends EngineException {

	public RequestTimeoutException(String message) {
		super(message, null);
	}
}
