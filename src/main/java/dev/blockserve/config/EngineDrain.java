package dev.blockserve.config;

import java.time.Duration;

import dev.blockserve.api.InFlightExchanges;
import dev.blockserve.engine.Engine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.boot.web.server.context.WebServerApplicationContext;
import org.springframework.context.ApplicationContext;
import org.springframework.context.ApplicationListener;
import org.springframework.context.SmartLifecycle;
import org.springframework.context.event.ContextClosedEvent;

/**
 * The step of a stop between the graceful phase and the web server's end. Spring Boot first lets requests
 * in flight finish for {@code spring.lifecycle.timeout-per-shutdown-phase}; then this stops the engine, so
 * that whatever is still running ends with an error a client can act on (a stream: an error event saying
 * the server is shutting down, then [DONE]; any other request: a 503), and waits briefly for those answers
 * to be written; only then does the web server stop and close the connections. Without it the engine (a
 * bean, closed after the web server) failed them into connections already cut. Only when the context
 * closes: a lifecycle stop without a close (a paused test context, a checkpoint) is followed by a start,
 * and leaves the engine alone. Runs on the thread that closes the context.
 */
public final class EngineDrain implements SmartLifecycle, ApplicationListener<ContextClosedEvent> {

	private static final Logger log = LoggerFactory.getLogger(EngineDrain.class);

	/**
	 * After Spring Boot's graceful shutdown (stopped first: higher phase) and before the web server stops
	 * (its phase is 1024 lower still).
	 */
	static final int PHASE = WebServerApplicationContext.GRACEFUL_SHUTDOWN_PHASE - 512;

	/** How long the error answers may take to be written (kept short: docker stop's grace is 10 s in all). */
	private static final Duration FLUSH = Duration.ofSeconds(1);

	private final Engine engine;

	private final InFlightExchanges exchanges;

	private final ApplicationContext context;

	private volatile boolean running;

	/** Set when this context begins to close (its ContextClosedEvent comes before any lifecycle stop). */
	private volatile boolean closing;

	EngineDrain(Engine engine, InFlightExchanges exchanges, ApplicationContext context) {
		this.engine = engine;
		this.exchanges = exchanges;
		this.context = context;
	}

	@Override
	public void onApplicationEvent(ContextClosedEvent event) {
		if (event.getApplicationContext() == context) {
			closing = true;
		}
	}

	@Override
	public void start() {
		running = true;
	}

	@Override
	public void stop() {
		running = false;
		if (!closing) {
			return;
		}
		int live = engine.numRunning() + engine.numWaiting();
		long t0 = System.nanoTime();
		engine.close();
		try {
			boolean written = exchanges.awaitNone(FLUSH);
			if (live > 0 || !written) {
				log.info("Stopped the engine with about {} requests in flight; their answers {} in {} ms", live,
						written ? "were written" : "were not all written (" + exchanges.count() + " left: " + exchanges.describe() + ")",
						(System.nanoTime() - t0) / 1_000_000);
			}
		}
		catch (InterruptedException e) {
			Thread.currentThread().interrupt();
		}
	}

	@Override
	public boolean isRunning() {
		return running;
	}

	@Override
	public int getPhase() {
		return PHASE;
	}
}
