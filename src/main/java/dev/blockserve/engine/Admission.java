package dev.blockserve.engine;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The bound on the engine's waiting queue: requests submitted but not yet scheduled, counted in requests
 * and in prompt tokens. Submitting threads reserve a place ({@link #tryAcquire}), the engine thread gives
 * it back when the request first runs or ends before that. Lock-free: two atomics.
 */
final class Admission {

	private final int maxRequests;

	private final long maxTokens;

	private final AtomicInteger requests = new AtomicInteger();

	private final AtomicLong tokens = new AtomicLong();

	Admission(int maxRequests, long maxTokens) {
		this.maxRequests = maxRequests;
		this.maxTokens = maxTokens;
	}

	/**
	 * Reserves a place for a request of {@code promptTokens}; false when either bound would be passed. Two
	 * racing submitters may both see the other's reservation and one be refused needlessly: the bound errs
	 * on the safe side.
	 */
	boolean tryAcquire(int promptTokens) {
		int r = requests.incrementAndGet();
		long t = tokens.addAndGet(promptTokens);
		if ((maxRequests > 0 && r > maxRequests) || (maxTokens > 0 && t > maxTokens)) {
			release(promptTokens);
			return false;
		}
		return true;
	}

	/**
	 * Takes a place for a request of {@code promptTokens} in the queue, or throws: a
	 * {@link RequestRejectedException} when no queue could ever hold it, an {@link EngineUnavailableException}
	 * (retry shortly) when the queue is full now.
	 */
	void admit(int promptTokens) {
		if (maxTokens > 0 && promptTokens > maxTokens) {
			throw new RequestRejectedException(RequestRejectedException.Reason.INVALID_INPUT, "the prompt's "
					+ promptTokens + " tokens exceed the waiting queue's bound of " + maxTokens + " prompt tokens");
		}
		if (!tryAcquire(promptTokens)) {
			throw new EngineUnavailableException("the server is at capacity: " + requests.get() + " requests and "
					+ tokens.get() + " prompt tokens are waiting; retry shortly", true, 1);
		}
	}

	void release(int promptTokens) {
		requests.decrementAndGet();
		tokens.addAndGet(-promptTokens);
	}
}
