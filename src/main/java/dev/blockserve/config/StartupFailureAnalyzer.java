package dev.blockserve.config;

import dev.blockserve.backend.BackendException;
import dev.blockserve.model.ModelLoadException;

import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.diagnostics.FailureAnalyzer;

/**
 * Turns a start-up failure of blockserve's own (a model that cannot be found, downloaded or loaded; a
 * native library or device that cannot be used) into Spring Boot's short failure report: the cause in
 * one paragraph and what to do, instead of a stack trace repeating the message at every bean level (the
 * trace stays at debug level). Runs once, on the starting thread.
 */
public final class StartupFailureAnalyzer implements FailureAnalyzer {

	@Override
	public FailureAnalysis analyze(Throwable failure) {
		for (Throwable c = failure; c != null; c = c.getCause()) {
			if (c instanceof ModelLoadException e) {
				return new FailureAnalysis("The model could not be loaded: " + e.getMessage(),
						"Set blockserve.model to a model directory in Hugging Face layout (config.json, *.safetensors, "
								+ "tokenizer.json) or to a Hugging Face repository id that can be downloaded or is cached.",
						e);
			}
			if (c instanceof BackendException e) {
				return new FailureAnalysis("The compute backend could not be started: " + e.getMessage(),
						"Use blockserve.device=cpu, or install what the message names.", e);
			}
		}
		return null;
	}
}
