package dev.blockserve.engine;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.Function;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;

/**
 * The server's engine: one dedicated thread drives an {@link EngineCore}, stepping while it has work.
 * {@link #submit} and {@link #abort} may be called from any thread and never block on the loop: they post
 * to an inbox the loop drains between steps. Each request's output is a Reactor {@link Flux}.
 */
public final class Engine implements AutoCloseable {

	private static final Logger log = LoggerFactory.getLogger(Engine.class);

	/**
	 * How long the idle loop parks. Submissions unpark it at once, so this bounds only how late it sees
	 * {@link #close} and how often an idle server refreshes its snapshot.
	 */
	private static final long IDLE_PARK_NANOS = 50_000_000L;

	/**
	 * Snapshot refresh: while busy a few times a second at most (building one walks the whole pool); when
	 * idle soon after the last step, so the dashboard shows the pool emptied.
	 */
	private static final long SNAPSHOT_BUSY_NANOS = 200_000_000L, SNAPSHOT_IDLE_NANOS = 20_000_000L;

	private final ModelRuntime runtime;

	private final EngineCore core;

	private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();

	private final Admission admission;

	private final EngineHealth health;

	private final EngineConfig config;

	private final AtomicLong ids = new AtomicLong(1);

	private final Thread thread;

	private final AtomicBoolean closed = new AtomicBoolean();

	private volatile EngineSnapshot engineSnapshot;

	private long lastSnapshotNanos;

	public Engine(ModelRuntime runtime, EngineConfig config, EngineListener listener) {
		this.runtime = runtime;
		this.config = config;
		this.core = EngineCore.create(runtime, config, listener);
		this.admission = new Admission(config.maxWaitingRequests(), config.maxWaitingPromptTokens());
		this.health = new EngineHealth(config.stallTimeout().toNanos());
		this.engineSnapshot = core.snapshot();
		this.thread = new Thread(this::run, "blockserve-engine");
		this.thread.setDaemon(true);
		this.thread.start();
	}

	/** A submitted request: its id (for {@link #abort}) and its event stream. */
	public record Submission(long id, Flux<GenerationEvent> events) {
	}

	/** Submits a request without a deadline. */
	public Submission submit(int[] prompt, SamplingParams params, int priority) {
		return submit(prompt, params, priority, null);
	}

	/**
	 * Submits a request. Checks happen here, on the caller's thread: an impossible request is rejected
	 * with a {@link RequestRejectedException}; a full waiting queue or an engine that is down throws
	 * {@link EngineUnavailableException}. Neither is ever queued.
	 * @param timeout the request's deadline from now, after which it ends with a {@link RequestTimeoutException}
	 * and its blocks are freed; null for none
	 */
	public Submission submit(int[] prompt, SamplingParams params, int priority, Duration timeout) {
		String down = downReason();
		if (down != null) {
			throw new EngineUnavailableException("the engine is not serving: " + down, false, 0);
		}
		int maxTokens = core.validate(prompt, params);
		admission.admit(prompt.length);
		long id = ids.getAndIncrement();
		long arrival = System.nanoTime();
		long deadline = timeout == null || timeout.isZero() ? 0 : (arrival + timeout.toNanos()) | 1;
		FluxOutput out = new FluxOutput(admission, prompt.length);
		int[] copy = prompt.clone();
		post(() -> {
			try {
				core.addValidated(id, copy, params, maxTokens, priority, arrival, deadline, out);
			}
			catch (RuntimeException e) {
				out.fail(new EngineException("request not queued: " + e.getMessage(), e));
			}
		});
		return new Submission(id, out.sink.asFlux().doOnCancel(() -> abort(id)));
	}

	/**
	 * The checks {@link #submit} makes of a request's prompt and parameters, without submitting it: throws
	 * {@link RequestRejectedException} as submit would. Any thread.
	 */
	public void validate(int[] prompt, SamplingParams params) {
		core.validate(prompt, params);
	}

	/** Why the engine serves no request now (shut down, failed, stalled), or null when it serves. */
	public String downReason() {
		return health.downReason();
	}

	/** Called once, on the engine thread, when a VM error stops the loop (the server exits there). */
	public void onFatal(Consumer<Throwable> handler) {
		health.onFatal(handler);
	}

	/** Sets the fault-injection test hook (on the engine thread). */
	public void faults(FaultInjector f) {
		post(() -> core.faults(f));
	}

	/**
	 * Counts nothing from the next request on (metrics, prefix-cache and speculation statistics) until
	 * called with false: for the server's own warm-up requests. In order with submissions. Any thread.
	 */
	public void quiet(boolean quiet) {
		post(() -> core.quiet(quiet));
	}

	/** Stops a request at the next step boundary and frees its blocks; its stream ends with finish reason abort. */
	public void abort(long requestId) {
		post(() -> core.abort(requestId));
	}

	private void post(Runnable r) {
		inbox.add(r);
		LockSupport.unpark(thread);
	}

	private void run() {
		try {
			while (!health.isClosed()) {
				Runnable r;
				while ((r = inbox.poll()) != null) {
					r.run();
				}
				core.expire(System.nanoTime());
				if (!core.hasWork()) {
					health.progress();
					publish(SNAPSHOT_IDLE_NANOS);
					if (inbox.isEmpty() && !health.isClosed()) {
						LockSupport.parkNanos(this, IDLE_PARK_NANOS);
					}
					continue;
				}
				try {
					if (core.step()) {
						health.progress();
					}
				}
				catch (RuntimeException e) {
					log.error("Engine step failed; failing the requests in flight", e);
					core.failAll(e);
				}
				publish(SNAPSHOT_BUSY_NANOS);
			}
		}
		catch (Error e) {
			// OutOfMemoryError and other VM errors: nothing here can be trusted to go on. Fail what is in
			// flight, report down, and let the handler end the process for its supervisor.
			log.error("Engine thread stopped by a VM error; the server is down", e);
			health.fatal(e);
			throw e;
		}
		finally {
			Throwable f = health.fatal();
			// shut down: a 503 for the client (try another replica), as for a request submitted after this
			core.failAll(f != null ? new IllegalStateException("the engine failed: " + f)
					: new EngineUnavailableException("the server is shutting down", false, 0));
		}
	}

	private void publish(long snapshotInterval) {
		long now = System.nanoTime();
		if (now - lastSnapshotNanos > snapshotInterval) {
			engineSnapshot = core.snapshot();
			lastSnapshotNanos = now;
		}
	}

	public ModelRuntime runtime() {
		return runtime;
	}

	public EngineConfig config() {
		return config;
	}

	public int maxModelLen() {
		return core.maxModelLen();
	}

	/** Running and waiting sequences as last published (a few times a second while busy). */
	public int numRunning() {
		return engineSnapshot.running();
	}

	public int numWaiting() {
		return engineSnapshot.waiting();
	}

	/** The latest published engine state for the dashboard (refreshed a few times a second while busy). */
	public EngineSnapshot engineSnapshot() {
		return engineSnapshot;
	}

	/**
	 * Runs {@code probe} on the core, on the engine thread between steps, and waits up to 10 s for its
	 * result (tests and diagnostics: invariant checks, block counts).
	 */
	public <T> T inspect(Function<EngineCore, T> probe) throws InterruptedException {
		var done = new CompletableFuture<T>();
		post(() -> {
			try {
				done.complete(probe.apply(core));
			}
			catch (RuntimeException e) {
				done.completeExceptionally(e);
			}
		});
		try {
			return done.get(10, TimeUnit.SECONDS);
		}
		catch (ExecutionException | TimeoutException e) {
			throw new IllegalStateException(e.getCause() != null ? e.getCause().getMessage() : e.toString(), e);
		}
	}

	/**
	 * Stops the engine: no request is taken from now on, the step under way finishes, and every request
	 * still running or waiting ends with an error (a 503: the server is shutting down). Idempotent: the
	 * server drains before its web server stops, and closes again as a bean.
	 */
	@Override
	public void close() {
		close(CLOSE_WAIT);
	}

	/** How long a close waits for the step under way. */
	static final Duration CLOSE_WAIT = Duration.ofSeconds(10);

	/**
	 * {@link #close()}, waiting at most {@code wait} for the step under way. A step still running then (stuck in
	 * a kernel, say) keeps the engine's and the model's native memory: freeing it under the step could crash the
	 * process while it stops; the memory goes with the process.
	 */
	void close(Duration wait) {
		if (!closed.compareAndSet(false, true)) {
			return;
		}
		health.closed();
		LockSupport.unpark(thread);
		try {
			thread.join(Math.max(1, wait.toMillis()));
		}
		catch (InterruptedException e) {
			Thread.currentThread().interrupt();
		}
		if (thread.isAlive()) {
			String why = "the engine thread was still in a step " + wait.toMillis() + " ms after the stop";
			log.error("{}: its native memory and the model's are left to the process's exit, not freed under it", why);
			runtime.keepOpen(why);
			return;
		}
		core.close();
	}
}
