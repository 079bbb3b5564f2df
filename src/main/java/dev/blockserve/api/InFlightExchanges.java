package dev.blockserve.api;

import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import reactor.core.publisher.Mono;

import org.springframework.http.server.reactive.HttpHandler;

/**
 * Counts the HTTP exchanges whose response is not yet written, so that a stop can wait until the answers
 * it caused (the error events of requests the engine ended) have reached their clients before the web
 * server closes their connections. It wraps the whole handler (error handling included: a request that
 * failed is answered by the error handler, after the filters), so an exchange counts from its start until
 * its response is written (a stream: its last event flushed) or the client went away. Any thread; one
 * concurrent set, touched twice a request (not per token).
 */
public final class InFlightExchanges {

	/**
	 * One exchange in flight: what it is, since when, its connection (what it holds unsent) and how far its
	 * stream got. Identity equality: the set holds each exchange once.
	 */
	private record Live(org.springframework.http.server.reactive.ServerHttpRequest request, long startNanos,
			io.netty.channel.Channel channel, StreamProgress progress) {

		@Override
		public boolean equals(Object o) {
			return this == o;
		}

		@Override
		public int hashCode() {
			return System.identityHashCode(this);
		}

		String describe(long now) {
			// the text only here, for the stop's log: not built for every request
			String what = request.getMethod() + " " + request.getPath().value()
					+ (progress.streamed() ? " (its stream: " + progress + ")" : "");
			if (channel == null) {
				return what + " for " + (now - startNanos) / 1_000_000 + " ms";
			}
			var out = channel.unsafe().outboundBuffer();
			long queued = out == null ? 0 : out.totalPendingWriteBytes();
			// bytes queued in Netty: the kernel takes no more, so the peer is not reading; none queued and the
			// response unfinished: the server has not written the rest
			String how = ", " + queued + " bytes queued in Netty (the connection " + (channel.isWritable() ? "" : "not ")
					+ "writable)";
			return what + " for " + (now - startNanos) / 1_000_000 + " ms" + how;
		}
	}

	private final Set<Live> live = ConcurrentHashMap.newKeySet();

	private final Object lock = new Object();

	/** {@code handler}, counting its exchanges here. */
	public HttpHandler decorate(HttpHandler handler) {
		return (request, response) -> {
			Object nativeRequest = org.springframework.http.server.reactive.ServerHttpRequestDecorator.getNativeRequest(request);
			Live l = new Live(request, System.nanoTime(),
					nativeRequest instanceof reactor.netty.Connection c ? c.channel() : null, new StreamProgress());
			live.add(l);
			return Mono.defer(() -> handler.handle(request, response)).contextWrite(ctx -> ctx.put(StreamProgress.class,
					l.progress())).doFinally(s -> {
				live.remove(l);
				if (live.isEmpty()) {
					synchronized (lock) {
						lock.notifyAll();
					}
				}
			});
		};
	}

	public int count() {
		return live.size();
	}

	/** The exchanges in flight, each with its age and the bytes its connection holds unsent (for the stop's log). */
	public List<String> describe() {
		long now = System.nanoTime();
		return live.stream().map(l -> l.describe(now)).toList();
	}

	/** Waits until no exchange is in flight, at most {@code timeout}; whether none is. */
	public boolean awaitNone(Duration timeout) throws InterruptedException {
		long deadline = System.nanoTime() + timeout.toNanos();
		synchronized (lock) {
			for (long left; !live.isEmpty() && (left = deadline - System.nanoTime()) > 0;) {
				lock.wait(Math.max(1, left / 1_000_000));
			}
		}
		return live.isEmpty();
	}
}
