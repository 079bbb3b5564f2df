package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.kvcache.BlockCopies;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.kvcache.KvCacheSnapshot;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.StepInput;
import dev.blockserve.scheduler.Scheduler;
import dev.blockserve.scheduler.SchedulerOutput;
import dev.blockserve.scheduler.Sequence;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Sinks;

/**
 * The serving loop. One dedicated thread repeats: take submitted and aborted requests, schedule, copy
 * blocks for copy-on-write, build the step's input, run the model, sample, append, detokenise, check stop
 * conditions, publish events, free what finished. {@link #submit} and {@link #abort} may be called from
 * any thread and never block on the loop: they post to a queue the loop drains between steps.
 */
public final class Engine implements AutoCloseable {

	private static final Logger log = LoggerFactory.getLogger(Engine.class);

	/** A request: its choices share one stream. Touched only by the engine thread after submission. */
	static final class Group {

		final long id;

		final SamplingParams params;

		final int[] prompt;

		final int priority;

		final long arrivalNanos;

		final int maxTokens;

		final Sinks.Many<GenerationEvent> sink = Sinks.many().unicast().onBackpressureBuffer();

		final List<EngineSequence> seqs = new ArrayList<>();

		int cachedPromptTokens = -1;

		long firstScheduledNanos;

		long firstTokenNanos;

		Group(long id, int[] prompt, SamplingParams params, int priority, int maxTokens) {
			this.id = id;
			this.prompt = prompt;
			this.params = params;
			this.priority = priority;
			this.maxTokens = maxTokens;
			this.arrivalNanos = System.nanoTime();
		}
	}

	private final ModelRuntime runtime;

	private final LlamaModel model;

	private final Backend backend;

	private final KvCacheManager kv;

	private final Scheduler scheduler;

	private final Sampler sampler;

	private final StepInput step = new StepInput();

	private final int maxModelLen;

	private final int maxBlocksPerSeq;

	private final int vocab;

	private final EngineListener listener;

	private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();

	private final AtomicLong ids = new AtomicLong(1);

	private final Map<Long, Group> groups = new HashMap<>();

	private final Thread thread;

	private volatile boolean closed;

	private volatile EngineSnapshot engineSnapshot;

	private long generatedTokens;

	private long promptTokens;

	private double recentTtftMillis;

	private volatile int numRunning;

	private volatile int numWaiting;

	private long lastSnapshotNanos;

	private float[] logitsRow;

	private int[] argmax = new int[64];

	private NativeBuffer copySrc;

	private NativeBuffer copyDst;

	public Engine(ModelRuntime runtime, EngineConfig config, EngineListener listener) {
		this.runtime = runtime;
		this.model = runtime.model();
		this.backend = runtime.backend();
		this.listener = listener == null ? EngineListener.NONE : listener;
		var cache = runtime.cache();
		this.kv = new KvCacheManager(new BlockPool(cache.numBlocks(), cache.blockSize()), config.prefixCaching(),
				runtime.name());
		this.scheduler = new Scheduler(kv, config.scheduler());
		this.vocab = model.config().vocabSize();
		this.sampler = new Sampler(vocab);
		this.logitsRow = new float[vocab];
		this.maxModelLen = model.maxPositions();
		this.maxBlocksPerSeq = KvCacheManager.blocksFor(maxModelLen, cache.blockSize());
		this.engineSnapshot = new EngineSnapshot(System.currentTimeMillis(), kv.snapshot(), List.of(), 0, 0, 0, 0, 0, 0);
		this.thread = new Thread(this::run, "blockserve-engine");
		this.thread.setDaemon(true);
		this.thread.start();
	}

	public ModelRuntime runtime() {
		return runtime;
	}

	public int maxModelLen() {
		return maxModelLen;
	}

	public int numRunning() {
		return numRunning;
	}

	public int numWaiting() {
		return numWaiting;
	}

	public long preemptions() {
		return scheduler.preemptions();
	}

	/** The latest published engine state for the dashboard (refreshed a few times a second while busy). */
	public EngineSnapshot engineSnapshot() {
		return engineSnapshot;
	}

	/** The latest published snapshot of the block pool (refreshed a few times a second while busy). */
	public KvCacheSnapshot snapshot() {
		return engineSnapshot.kv();
	}

	/**
	 * Submits a request. Validation happens here, on the caller's thread: an impossible request (empty
	 * prompt, unknown token, longer than the context or the whole KV pool) is rejected with an
	 * {@link IllegalArgumentException} whose message says why, and is never queued.
	 */
	public Submission submit(int[] prompt, SamplingParams params, int priority) {
		if (closed) {
			throw new IllegalStateException("the engine is shut down");
		}
		if (prompt.length == 0) {
			throw new IllegalArgumentException("the prompt must contain at least one token");
		}
		for (int t : prompt) {
			if (t < 0 || t >= vocab) {
				throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + vocab + ")");
			}
		}
		int maxTokens = params.maxTokens() > 0 ? params.maxTokens() : maxModelLen - prompt.length;
		if (prompt.length + maxTokens > maxModelLen || maxTokens <= 0) {
			throw new IllegalArgumentException("This model's maximum context length is " + maxModelLen
					+ " tokens. However, you requested " + (prompt.length + Math.max(maxTokens, 0)) + " tokens ("
					+ prompt.length + " in the prompt, " + Math.max(maxTokens, 0)
					+ " for the completion). Please reduce the length of the prompt or of max_tokens.");
		}
		int blocks = KvCacheManager.blocksFor(prompt.length + maxTokens, kv.blockSize());
		if (blocks > kv.pool().numBlocks()) {
			throw new IllegalArgumentException("the request needs up to " + blocks + " KV cache blocks ("
					+ (prompt.length + maxTokens) + " tokens), but the cache holds only " + kv.pool().numBlocks()
					+ "; reduce max_tokens or the prompt");
		}
		Group g = new Group(ids.getAndIncrement(), prompt.clone(), params, priority, maxTokens);
		inbox.add(() -> admit(g));
		LockSupport.unpark(thread);
		Flux<GenerationEvent> flux = g.sink.asFlux().doOnCancel(() -> abort(g.id));
		return new Submission(g.id, flux);
	}

	/** A submitted request: its id (for {@link #abort}) and its event stream. */
	public record Submission(long id, Flux<GenerationEvent> events) {
	}

	/** Stops a request at the next step boundary and frees its blocks; its stream ends with finish reason abort. */
	public void abort(long requestId) {
		inbox.add(() -> {
			Group g = groups.get(requestId);
			if (g != null) {
				for (EngineSequence s : g.seqs) {
					if (s.status() != Sequence.Status.FINISHED) {
						finish(s, "abort", "");
					}
				}
			}
		});
		LockSupport.unpark(thread);
	}

	private void admit(Group g) {
		groups.put(g.id, g);
		long seed = g.params.seed() != null ? g.params.seed() : ThreadLocalRandom.current().nextLong();
		EngineSequence s = new EngineSequence(ids.getAndIncrement(), g, g.prompt, seed,
				new IncrementalDetokenizer(runtime.tokenizer(), g.prompt, g.params.skipSpecialTokens()));
		g.seqs.add(s);
		scheduler.addWaiting(s);
	}

	private void run() {
		try {
			while (!closed) {
				Runnable r;
				while ((r = inbox.poll()) != null) {
					r.run();
				}
				if (!scheduler.hasWork()) {
					publish(true);
					if (inbox.isEmpty() && !closed) {
						LockSupport.parkNanos(this, 50_000_000L);
					}
					continue;
				}
				try {
					step();
				}
				catch (RuntimeException | Error e) {
					log.error("Engine step failed; failing the requests in flight", e);
					failAll(e);
				}
				publish(false);
			}
		}
		finally {
			failAll(new IllegalStateException("the engine shut down"));
		}
	}

	private void publish(boolean force) {
		numRunning = scheduler.numRunning();
		numWaiting = scheduler.numWaiting();
		long now = System.nanoTime();
		if (force ? now - lastSnapshotNanos > 20_000_000L : now - lastSnapshotNanos > 200_000_000L) {
			List<EngineSnapshot.SequenceInfo> seqs = new ArrayList<>();
			for (Group g : groups.values()) {
				for (EngineSequence s : g.seqs) {
					if (s.status() != Sequence.Status.FINISHED) {
						seqs.add(new EngineSnapshot.SequenceInfo(s.id(), g.id, s.index, s.status().name(),
								s.promptLength(), s.numOutputTokens(), s.numComputed()));
					}
				}
			}
			engineSnapshot = new EngineSnapshot(System.currentTimeMillis(), kv.snapshot(), seqs, scheduler.numRunning(),
					scheduler.numWaiting(), generatedTokens, promptTokens, scheduler.preemptions(), recentTtftMillis);
			lastSnapshotNanos = now;
		}
	}

	private void step() {
		SchedulerOutput out = scheduler.schedule();
		for (int i = 0; i < out.preempted().size(); i++) {
			listener.onPreemption();
		}
		int n = out.count();
		if (n == 0) {
			return;
		}
		long t0 = System.nanoTime();
		copyBlocks(out.copies());
		step.reset(kv.blockSize(), maxBlocksPerSeq);
		for (int i = 0; i < n; i++) {
			Sequence s = out.seq(i);
			step.addSequence(s.tokens(), s.numComputed(), out.numNewTokens(i), s.numComputed(), s.table().array(),
					s.table().size());
		}
		NativeBuffer logits = model.forward(step, runtime.cache());
		if (argmax.length < n) {
			argmax = new int[n];
		}
		model.argmax(n, argmax);
		long now = System.nanoTime();
		listener.onStep(out.totalTokens(), n, now - t0);
		for (int i = 0; i < n; i++) {
			EngineSequence s = (EngineSequence) out.seq(i);
			if (s.group.firstScheduledNanos == 0) {
				s.group.firstScheduledNanos = t0;
			}
			if (s.group.cachedPromptTokens < 0) {
				s.group.cachedPromptTokens = s.numComputed();
			}
			s.advance(out.numNewTokens(i));
			scheduler.commit(s);
			if (!s.readyToSample()) {
				continue; // a prefill chunk short of the prompt's end: nothing to sample yet
			}
			SamplingParams p = s.group.params;
			boolean needRow = p.needsLogitsRow();
			if (needRow) {
				backend.download(logits, (long) i * vocab, logitsRow, 0, vocab);
			}
			if (s.numOutputTokens() == 0 && p.n() > 1 && s.group.seqs.size() == 1) {
				fork(s);
				for (int c = 1; c < s.group.seqs.size(); c++) {
					emitToken(s.group.seqs.get(c), needRow, argmax[i], now);
				}
			}
			emitToken(s, needRow, argmax[i], now);
		}
	}

	/** Creates the n-1 siblings of a sequence whose prompt is computed: they share all its blocks. */
	private void fork(EngineSequence parent) {
		Group g = parent.group;
		long base = g.params.seed() != null ? g.params.seed() : ThreadLocalRandom.current().nextLong();
		for (int c = 1; c < g.params.n(); c++) {
			long id = ids.getAndIncrement();
			EngineSequence child = new EngineSequence(id, parent, c, base + c,
					new IncrementalDetokenizer(runtime.tokenizer(), g.prompt, g.params.skipSpecialTokens()));
			child.setTable(kv.fork(parent.table(), id));
			g.seqs.add(child);
			scheduler.addRunning(child);
		}
	}

	private void emitToken(EngineSequence s, boolean fromRow, int greedyToken, long now) {
		Group g = s.group;
		SamplingParams p = g.params;
		int token = fromRow
				? sampler.sample(logitsRow, 0, p, s.tokens(), s.promptLength(), s.numTokens(), s.rng, s.logprobs)
				: greedyToken;
		s.append(token);
		if (s.numOutputTokens() == 1 && g.firstTokenNanos == 0) {
			g.firstTokenNanos = now;
			promptTokens += g.prompt.length;
			double ttftMs = (now - g.arrivalNanos) / 1e6;
			recentTtftMillis = recentTtftMillis == 0 ? ttftMs : 0.8 * recentTtftMillis + 0.2 * ttftMs;
			listener.onFirstToken(g.firstScheduledNanos - g.arrivalNanos, now - g.arrivalNanos,
					now - g.firstScheduledNanos, g.prompt.length);
		}
		generatedTokens++;
		listener.onToken(s.numOutputTokens() == 1 ? -1 : now - s.lastTokenNanos);
		s.lastTokenNanos = now;
		String tokenText = null;
		String[] topTexts = null;
		if (p.logprobs() >= 0) {
			tokenText = s.detok.peek(token);
			topTexts = new String[s.logprobs.topIds.length];
			for (int k = 0; k < topTexts.length; k++) {
				topTexts[k] = s.detok.peek(s.logprobs.topIds[k]);
			}
		}
		String delta = s.detok.add(token);
		boolean stopString = s.stop.append(delta);
		String reason = null;
		if (stopString) {
			reason = "stop";
		}
		else if (!p.ignoreEos() && runtime.generationConfig().isEos(token)) {
			reason = "stop";
		}
		else if (contains(p.stopTokenIds(), token)) {
			reason = "stop";
		}
		else if (s.numOutputTokens() >= g.maxTokens || s.numTokens() >= maxModelLen) {
			reason = "length";
		}
		List<GenerationEvent.TokenLogprob> lps = null;
		if (p.logprobs() >= 0) {
			lps = List.of(new GenerationEvent.TokenLogprob(token, tokenText, s.logprobs.tokenLogprob,
					s.logprobs.topIds.clone(), topTexts, s.logprobs.topLogprobs.clone()));
		}
		if (reason != null) {
			if (!stopString) {
				s.stop.append(s.detok.flush());
			}
			emit(s, s.stop.release(true), token, lps, null);
			finish(s, reason, null);
		}
		else {
			emit(s, s.stop.release(false), token, lps, null);
		}
	}

	private void emit(EngineSequence s, String text, int token, List<GenerationEvent.TokenLogprob> lps, String reason) {
		Group g = s.group;
		g.sink.tryEmitNext(new GenerationEvent(s.index, text, token < 0 ? new int[0] : new int[] { token }, lps,
				reason, g.prompt.length, s.numOutputTokens(), Math.max(0, g.cachedPromptTokens)));
	}

	/** Ends a sequence: frees its blocks and sends its final event; the stream completes with the last one. */
	private void finish(EngineSequence s, String reason, String text) {
		Group g = s.group;
		scheduler.remove(s);
		long now = System.nanoTime();
		if (text != null || reason != null) {
			emit(s, text == null ? "" : text, -1, null, reason);
		}
		listener.onFinished(reason, now - g.arrivalNanos, g.firstTokenNanos == 0 ? 0 : now - g.firstTokenNanos,
				g.prompt.length, s.numOutputTokens());
		// Siblings are forked before their parent samples its first token, so a request whose sequences have
		// all finished is done: a parent finishes earlier only when aborted, and then there are no siblings.
		if (allFinished(g)) {
			groups.remove(g.id);
			g.sink.tryEmitComplete();
		}
	}

	private static boolean allFinished(Group g) {
		for (EngineSequence s : g.seqs) {
			if (s.status() != Sequence.Status.FINISHED) {
				return false;
			}
		}
		return true;
	}

	private void copyBlocks(BlockCopies copies) {
		int n = copies.count();
		if (n == 0) {
			return;
		}
		if (copySrc == null || copySrc.elements() < n) {
			if (copySrc != null) {
				copySrc.close();
				copyDst.close();
			}
			copySrc = backend.allocate(Math.max(n, 64), DType.I32);
			copyDst = backend.allocate(Math.max(n, 64), DType.I32);
		}
		backend.upload(copySrc, copies.src(), n);
		backend.upload(copyDst, copies.dst(), n);
		backend.blockCopy(runtime.cache(), copySrc, copyDst, n);
	}

	private void failAll(Throwable cause) {
		for (Group g : new ArrayList<>(groups.values())) {
			for (EngineSequence s : g.seqs) {
				if (s.status() != Sequence.Status.FINISHED) {
					scheduler.remove(s);
				}
			}
			groups.remove(g.id);
			g.sink.tryEmitError(new EngineException("generation failed: " + cause.getMessage(), cause));
		}
	}

	private static boolean contains(int[] a, int v) {
		for (int x : a) {
			if (x == v) {
				return true;
			}
		}
		return false;
	}

	/** Runs {@code task} on the engine thread between steps and waits for its result (tests, diagnostics). */
	private <T> T onEngineThread(java.util.function.Supplier<T> task) throws InterruptedException {
		var done = new java.util.concurrent.CompletableFuture<T>();
		inbox.add(() -> {
			try {
				done.complete(task.get());
			}
			catch (RuntimeException e) {
				done.completeExceptionally(e);
			}
		});
		LockSupport.unpark(thread);
		try {
			return done.get(10, java.util.concurrent.TimeUnit.SECONDS);
		}
		catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
			throw new IllegalStateException(e.getCause() != null ? e.getCause().getMessage() : e.toString(), e);
		}
	}

	/** Checks the block manager's invariants on the engine thread (tests). */
	public void checkInvariants() throws InterruptedException {
		onEngineThread(() -> {
			kv.checkInvariants();
			return null;
		});
	}

	/** Number of blocks not free, read on the engine thread (tests). */
	public int usedBlocks() throws InterruptedException {
		return onEngineThread(() -> kv.pool().numBlocks() - kv.pool().numFree());
	}

	public KvCacheManager blockManager() {
		return kv;
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
		if (copySrc != null) {
			copySrc.close();
			copyDst.close();
		}
	}
}
