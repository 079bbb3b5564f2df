package dev.blockserve.api;

import org.springframework.http.HttpStatus;

/** An error answered in OpenAI's envelope: {"error": {"message", "type", "param", "code"}}. */
public class ApiException extends RuntimeException {

	private final HttpStatus status;

	private final String type;

	private final String param;

	private final String code;

	private final int retryAfterSeconds;

	public ApiException(HttpStatus status, String type, String message, String param, String code) {
		this(status, type, message, param, code, 0);
	}

	/** @param retryAfterSeconds above 0: sent as the Retry-After header */
	public ApiException(HttpStatus status, String type, String message, String param, String code,
			int retryAfterSeconds) {
		super(message);
		this.status = status;
		this.type = type;
		this.param = param;
		this.code = code;
		this.retryAfterSeconds = retryAfterSeconds;
	}

	/** A 429 as OpenAI sends it, with Retry-After. */
	public static ApiException tooManyRequests(String message, int retryAfterSeconds) {
		return new ApiException(HttpStatus.TOO_MANY_REQUESTS, "rate_limit_exceeded", message, null,
				"rate_limit_exceeded", Math.max(1, retryAfterSeconds));
	}

	public int retryAfterSeconds() {
		return retryAfterSeconds;
	}

	public static ApiException badRequest(String message, String param) {
		return new ApiException(HttpStatus.BAD_REQUEST, "invalid_request_error", message, param, null);
	}

	public HttpStatus status() {
		return status;
	}

	public String type() {
		return type;
	}

	public String param() {
		return param;
	}

	public String code() {
		return code;
	}
}
