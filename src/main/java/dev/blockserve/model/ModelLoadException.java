package dev.blockserve.model;

/** A model directory that cannot be served: one message naming the file (and tensor) at fault. Thrown on the loading thread (start-up). */
public class ModelLoadException extends RuntimeException {

	public ModelLoadException(String message) {
		super(message);
	}

	public ModelLoadException(String message, Throwable cause) {
		super(message, cause);
	}
}
