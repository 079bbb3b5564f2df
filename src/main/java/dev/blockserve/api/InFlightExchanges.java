package dev.blockserve.api;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import reactor.core.publisher.Mono;

import org.springframework.http.server.reactive.HttpHandler;

/**
 * Counts the HTTP exchanges whose response is not yet written, so that a stop can wait until the answers
 * it caused (the error events of requests the engine ended) have reached their clients before the web
 * server closes their connections. It wraps the whole handler (error handling included: a request that
 * failed is answered by the error handler, after the filters), so an exchange counts from its start until
 * its response is written (a stream: its last event flushed) or the client went away. Any thread; one
 * atomic counter, touched twice a request.
 */
public final class InFlightExchanges {

	private final AtomicInteger count = new AtomicInteger();

	private final Object lock = new Object();

	/** {@code handler}, counting its exchanges here. */
	public HttpHandler decorate(HttpHandler handler) {
		return (request, response) -> {
			count.incrementAndGet();
			return Mono.defer(() -> handler.handle(request, response)).doFinally(s -> {
				if (count.decrementAndGet() == 0) {
					synchronized (lock) {
						lock.notifyAll();
					}
				}
			});
		};
	}

	public int count() {
		return count.get();
	}

	/** Waits until no exchange is in flight, at most {@code timeout}; whether none is. */
	public boolean awaitNone(Duration timeout) throws InterruptedException {
		long deadline = System.nanoTime() + timeout.toNanos();
		synchronized (lock) {
			for (long left; count.get() > 0 && (left = deadline - System.nanoTime()) > 0;) {
				lock.wait(Math.max(1, left / 1_000_000));
			}
		}
		return count.get() == 0;
	}
}
