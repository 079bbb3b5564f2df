package dev.blockserve.engine;

/**
 * A request the engine will never run, refused before it is queued. The {@link Reason} says which rule it
 * broke, so callers map it to a status or an error code without reading the message; the message says
 * why in words a client can act on. Thrown on the submitting thread.
 */
public final class RequestRejectedException extends IllegalArgumentException {

	/** Which rule a rejected request broke. */
	public enum Reason {
		/** Empty prompt, a token outside the vocabulary, or a feature the engine was built without. */
		INVALID_INPUT,
		/** Prompt plus max_tokens exceed the served context length. */
		CONTEXT_LENGTH_EXCEEDED,
		/** The request could never fit in the whole KV cache. */
		EXCEEDS_KV_CACHE
	}

	private final Reason reason;

	private final String param;

	public RequestRejectedException(Reason reason, String message) {
		this(reason, message, null);
	}

	/** @param param the request field at fault (OpenAI's error "param"), or null */
	public RequestRejectedException(Reason reason, String message, String param) {
		super(message);
		this.reason = reason;
		this.param = param;
	}

	public Reason reason() {
		return reason;
	}

	/** The request field at fault, or null when the request as a whole is. */
	public String param() {
		return param;
	}
}
