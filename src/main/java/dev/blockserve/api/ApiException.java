package dev.blockserve.api;

import org.springframework.http.HttpStatus;

/** An error answered in OpenAI's envelope: {"error": {"message", "type", "param", "code"}}. */
public class ApiException extends RuntimeException {

	private final HttpStatus status;

	private final String type;

	private final String param;

	private final String code;

	public ApiException(HttpStatus status, String type, String message, String param, String code) {
		super(message);
		this.status = status;
		this.type = type;
		this.param = param;
		this.code = code;
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
