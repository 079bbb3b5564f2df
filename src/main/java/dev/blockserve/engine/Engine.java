package dev.blockserve.engine;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.kvcache.KvCacheSnapshot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;

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

	/** Snapshot refresh while busy: building one walks the whole pool, so a few times a second at most. */
	private static final long SNAPSHOT_BUSY_NANOS = 200_000_000L;

	/** Snapshot refresh when idle: soon after the last step, so the dashboard shows the pool emptied. */
	private static final long SNAPSHOT_IDLE_NANOS = 20_000_000L;

	private final ModelRuntime runtime;

	private final EngineCore core;

	private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();

	private final AtomicLong ids = new AtomicLong(1);

	private final Thread thread;

	private volatile boolean closed;

	private volatile EngineSnapshot engineSnapshot;

	private volatile int numRunning;

	private volatile int numWaiting;

	private long lastSnapshotNanos;

	public Engine(ModelRuntime runtime, EngineConfig config, EngineListener listener) {
		this.runtime = runtime;
		this.core = EngineCore.create(runtime, config, listener);
		this.engineSnapshot = core.snapshot();
		this.thread = new Thread(this::run, "blockserve-engine");
		this.thread.setDaemon(true);
		this.thread.start();
	}

	/** A submitted request: its id (for {@link #abort}) and its event stream. */
	public record Submission(long id, Flux<GenerationEvent> events) {
	}

	/**
	 * Submits a request. Validation happens here, on the caller's thread: an impossible request is
	 * rejected with a {@link RequestRejectedException} and never queued.
	 */
	public Submission submit(int[] prompt, SamplingParams params, int priority) {
		if (closed) {
			throw new IllegalStateException("the engine is shut down");
		}
		core.validate(prompt, params);
		long id = ids.getAndIncrement();
		long arrival = System.nanoTime();
		FluxOutput out = new FluxOutput();
		int[] copy = prompt.clone();
		post(() -> core.add(id, copy, params, priority, arrival, out));
		return new Submission(id, out.sink.asFlux().doOnCancel(() -> abort(id)));
	}

	/** Stops a request at the next step boundary and frees its blocks; its stream ends with finish reason abort. */
	public void abort(long requestId) {
		post(() -> core.abort(requestId));
	}

	private void post(Runnable r) {
		inbox.add(r);
		LockSupport.unpark(thread);
	}

	/** Delivers a request's output to its Flux; the sink buffers what the subscriber has not requested yet. */
	private static final class FluxOutput implements RequestOutput {

		final Sinks.Many<GenerationEvent> sink = Sinks.many().unicast().onBackpressureBuffer();

		@Override
		public void event(GenerationEvent e) {
			sink.tryEmitNext(e);
		}

		@Override
		public void complete() {
			sink.tryEmitComplete();
		}

		@Override
		public void fail(EngineException e) {
			sink.tryEmitError(e);
		}
	}

	private void run() {
		try {
			while (!closed) {
				Runnable r;
				while ((r = inbox.poll()) != null) {
					r.run();
				}
				if (!core.hasWork()) {
					publish(SNAPSHOT_IDLE_NANOS);
					if (inbox.isEmpty() && !closed) {
						LockSupport.parkNanos(this, IDLE_PARK_NANOS);
					}
					continue;
				}
				try {
					core.step();
				}
				catch (RuntimeException e) {
					log.error("Engine step failed; failing the requests in flight", e);
					core.failAll(e);
				}
				publish(SNAPSHOT_BUSY_NANOS);
			}
		}
		finally {
			core.failAll(new IllegalStateException("the engine shut down"));
		}
	}

	private void publish(long snapshotInterval) {
		numRunning = core.numRunning();
		numWaiting = core.numWaiting();
		long now = System.nanoTime();
		if (now - lastSnapshotNanos > snapshotInterval) {
			engineSnapshot = core.snapshot();
			lastSnapshotNanos = now;
		}
	}

	public ModelRuntime runtime() {
		return runtime;
	}

	public int maxModelLen() {
		return core.maxModelLen();
	}

	public int numRunning() {
		return numRunning;
	}

	public int numWaiting() {
		return numWaiting;
	}

	public long preemptions() {
		return engineSnapshot.preemptions();
	}

	/** The latest published engine state for the dashboard (refreshed a few times a second while busy). */
	public EngineSnapshot engineSnapshot() {
		return engineSnapshot;
	}

	/** The latest published snapshot of the block pool. */
	public KvCacheSnapshot snapshot() {
		return engineSnapshot.kv();
	}

	/** Runs {@code task} on the engine thread between steps and waits for its result (tests, diagnostics). */
	private <T> T onEngineThread(Supplier<T> task) throws InterruptedException {
		var done = new CompletableFuture<T>();
		post(() -> {
			try {
				done.complete(task.get());
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

	/** Checks the block manager's invariants on the engine thread (tests). */
	public void checkInvariants() throws InterruptedException {
		onEngineThread(() -> {
			core.kv().checkInvariants();
			return null;
		});
	}

	/** Number of blocks not free, read on the engine thread (tests). */
	public int usedBlocks() throws InterruptedException {
		return onEngineThread(() -> core.kv().pool().numBlocks() - core.kv().pool().numFree());
	}

	/** The block manager (tests; read it only through {@link #checkInvariants} or {@link #usedBlocks} while running). */
	public KvCacheManager blockManager() {
		return core.kv();
	}

	@Override
	public void close() {
		closed = true;
		LockSupport.unpark(thread);
		try {
			thread.join(10_000);
		}
		catch (InterruptedException e) {
			Thread.currentThread().interrupt();
		}
		core.close();
	}
}
