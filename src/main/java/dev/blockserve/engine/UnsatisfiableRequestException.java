package dev.blockserve.engine;

/**
 * A request whose own constraints, together, leave no token to generate at some step (allowed_token_ids
 * that its grammar never accepts there, min_tokens where only an end may follow). Known only while it
 * runs; the API answers it as the client's error (400), not the server's. Made on the engine thread.
 */
public final class UnsatisfiableRequestException extends EngineException {

	public UnsatisfiableRequestException(String message) {
		super(message, null);
	}
}
