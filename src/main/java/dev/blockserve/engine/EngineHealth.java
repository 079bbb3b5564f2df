package dev.blockserve.engine;

import java.util.function.Consumer;

/**
 * Whether the engine serves: not when shut down, not after a VM error stopped its loop, and not while it
 * has work but has run no step for longer than the stall timeout (a watchdog read on demand, so it
 * needs no thread of its own). The engine thread reports progress; any thread asks {@link #downReason}.
 */
final class EngineHealth {

	private final long stallNanos;

	/** When the loop last made progress: a step that ran the model, or an idle turn. */
	private volatile long lastProgressNanos = System.nanoTime();

	private volatile Throwable fatal;

	private volatile boolean closed;

	private volatile Consumer<Throwable> onFatal = t -> {
	};

	EngineHealth(long stallNanos) {
		this.stallNanos = stallNanos;
	}

	void progress() {
		lastProgressNanos = System.nanoTime();
	}

	void closed() {
		closed = true;
	}

	boolean isClosed() {
		return closed;
	}

	/** A VM error stopped the loop: down for good; the handler (the server: exit) runs on this thread. */
	void fatal(Throwable t) {
		fatal = t;
		onFatal.accept(t);
	}

	Throwable fatal() {
		return fatal;
	}

	void onFatal(Consumer<Throwable> handler) {
		onFatal = handler;
	}

	/** Why the engine serves no request now, or null when it serves. */
	String downReason() {
		if (closed) {
			return "it is shut down";
		}
		if (fatal != null) {
			return "it failed: " + fatal;
		}
		long idle = System.nanoTime() - lastProgressNanos;
		if (idle > stallNanos) {
			return "it has run no step for " + idle / 1_000_000_000 + " s while requests wait (stalled)";
		}
		return null;
	}
}
