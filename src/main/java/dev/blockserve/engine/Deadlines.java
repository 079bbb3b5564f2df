package dev.blockserve.engine;

/**
 * The earliest deadline among live requests, so that the engine loop's check every turn costs one
 * comparison and the requests are scanned only once a deadline has passed. Engine thread.
 */
final class Deadlines {

	private long earliest;

	private boolean any;

	/** Notes a request's deadline (System.nanoTime(); 0 for none). */
	void add(long deadlineNanos) {
		if (deadlineNanos != 0 && (!any || deadlineNanos - earliest < 0)) {
			earliest = deadlineNanos;
			any = true;
		}
	}

	/** Whether some deadline noted since the last {@link #clear} has passed by {@code now}. */
	boolean due(long now) {
		return any && now - earliest > 0;
	}

	/** Forgets every deadline; the caller adds back those of the requests still live. */
	void clear() {
		any = false;
	}
}
