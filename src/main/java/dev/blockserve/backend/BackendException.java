package dev.blockserve.backend;

/** A failure inside a backend: a native kernel rejecting its input, a CUDA error, a library that will not load. Thrown on the thread that called the op. */
public class BackendException extends RuntimeException {

	public BackendException(String message) {
		super(message);
	}

	public BackendException(String message, Throwable cause) {
		super(message, cause);
	}
}
