package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.Scheduler;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.scheduler.SchedulerOutput;
import dev.blockserve.scheduler.Sequence;

/**
 * The engine without a thread: requests are added, and each {@link #step} schedules, runs the model and
 * processes the output. The server's loop thread ({@link Engine}), the offline generator, the command
 * line and the golden tests all drive this one class, so they share one scheduler and one KV manager
 * path, preemption included. Not thread-safe: one thread owns it ({@link #validate} excepted).
 */
public final class EngineCore implements AutoCloseable {

	private final KvCacheManager kv;

	private final Scheduler<EngineSequence> scheduler;

	private final ModelRunner runner;

	private final OutputProcessor processor;

	private final TextTokenizer tokenizer;

	private final QuietableListener listener;

	private final int maxModelLen;

	private final RequestValidator validator;

	private final GenerationConfig generation;

	private final int vocab;

	private final Map<Long, Request> requests = new HashMap<>();

	/** A runtime grown past this many states is not handed to new requests (its tables only grow). */
	private static final int MAX_SHARED_GRAMMAR_STATES = 50_000;

	/**
	 * Grammar runtimes by grammar (compiled grammars are cached by schema, so one schema is one key) and
	 * EOS set: requests with the same schema share the memoised transitions and masks, so a state's first,
	 * expensive mask is computed once for all of them. The least recently used of 32 go first; a request
	 * keeps the runtime it started with.
	 */
	private final Map<Object, dev.blockserve.constraint.GrammarRuntime> grammarRuntimes = new java.util.LinkedHashMap<>(64,
			0.75f, true) {
		@Override
		protected boolean removeEldestEntry(Map.Entry<Object, dev.blockserve.constraint.GrammarRuntime> e) {
			return size() > 32;
		}
	};

	private final Deadlines deadlines = new Deadlines();

	private FaultInjector faults = FaultInjector.NONE;

	private long nextSeqId = 1;

	/** Speculative draft tokens verified, and kept, since start (the dashboard's acceptance rate). */
	private long draftTokens, acceptedDraftTokens;

	/** A verifying sequence's drafts, kept while its tokens are appended over them. */
	private int[] draftScratch = new int[16];

	/**
	 * @param tokenizer null for an engine that returns token ids only (no text, no stop strings)
	 * @param generation the model's EOS tokens
	 */
	public EngineCore(LlamaModel model, KvCacheMemory cache, KvCacheManager kv, SchedulerConfig config,
			TextTokenizer tokenizer, GenerationConfig generation, EngineListener listener) {
		if (kv.blockSize() != cache.blockSize() || kv.pool().numBlocks() > cache.numBlocks()) {
			throw new IllegalArgumentException("block manager and cache memory disagree on block size or count");
		}
		this.kv = kv;
		this.scheduler = new Scheduler<>(kv, config);
		this.runner = new ModelRunner(model, cache);
		this.tokenizer = tokenizer;
		this.listener = new QuietableListener(listener == null ? EngineListener.NONE : listener);
		int vocab = model.config().vocabSize();
		this.vocab = vocab;
		this.generation = generation;
		this.maxModelLen = model.maxPositions();
		this.processor = new OutputProcessor(vocab, generation, maxModelLen, this.listener);
		this.validator = new RequestValidator(vocab, maxModelLen, kv.blockSize(), kv.pool().numBlocks(), tokenizer != null);
	}

	/** The serving configuration: a fresh block pool over the runtime's whole KV cache. */
	public static EngineCore create(ModelRuntime rt, EngineConfig config, EngineListener listener) {
		var cache = rt.cache();
		var kv = new KvCacheManager(new BlockPool(cache.numBlocks(), cache.blockSize()), config.prefixCaching(),
				rt.name(), rt.model().config().features().maxWindow());
		return new EngineCore(rt.model(), cache, kv, config.scheduler(), rt.tokenizer(), rt.generationConfig(), listener);
	}

	/**
	 * Checks that a request can ever run and returns its effective max_tokens. Reads only final state, so
	 * any thread may call it.
	 * @throws RequestRejectedException naming the rule the request breaks
	 */
	public int validate(int[] prompt, SamplingParams params) {
		return validator.validate(prompt, params);
	}

	/** Sets the test hook that may throw at each stage of a step (engine thread). */
	public void faults(FaultInjector f) {
		this.faults = f == null ? FaultInjector.NONE : f;
		processor.faults(this.faults);
	}

	/**
	 * Queues a request (validated here); {@code id} must be unique among live requests.
	 * @param deadlineNanos System.nanoTime() after which {@link #expire} ends it; 0 for none
	 */
	public void add(long id, int[] prompt, SamplingParams params, int priority, long arrivalNanos, long deadlineNanos,
			RequestOutput out) {
		addValidated(id, prompt.clone(), params, validate(prompt, params), priority, arrivalNanos, deadlineNanos, out);
	}

	/** Queues a request the caller validated ({@code maxTokens} from {@link #validate}); the core owns {@code prompt}. */
	void addValidated(long id, int[] prompt, SamplingParams params, int maxTokens, int priority, long arrivalNanos,
			long deadlineNanos, RequestOutput out) {
		Request r = new Request(id, prompt, params, priority, maxTokens, arrivalNanos, deadlineNanos, out);
		if (requests.putIfAbsent(id, r) != null) {
			throw new IllegalArgumentException("request " + id + " is already live");
		}
		deadlines.add(deadlineNanos);
		if (params.grammar() != null) {
			r.grammar = grammarRuntime(params);
		}
		EngineSequence s = new EngineSequence(nextSeqId++, r, seed(params), tokenizer);
		r.seqs.add(s);
		scheduler.addWaiting(s);
	}

	private dev.blockserve.constraint.GrammarRuntime grammarRuntime(SamplingParams params) {
		Object key = java.util.List.of(params.grammar(), params.ignoreEos());
		var rt = grammarRuntimes.get(key);
		if (rt == null || rt.numStates() > MAX_SHARED_GRAMMAR_STATES) {
			// EOS ends a constrained output only where its grammar may end; ignore_eos keeps it out entirely
			rt = new dev.blockserve.constraint.GrammarRuntime(params.grammar(), tokenizer.vocabulary(vocab),
					params.ignoreEos() ? new int[0] : generation.eosTokenIds(), vocab);
			grammarRuntimes.put(key, rt);
		}
		return rt;
	}

	/** Ends a live request at once: its blocks are freed, and each unfinished choice ends with finish reason abort. */
	public void abort(long id) {
		Request r = requests.get(id);
		if (r != null) {
			for (EngineSequence s : r.seqs) {
				if (s.status() != Sequence.Status.FINISHED) {
					finish(s, FinishReason.ABORT);
				}
			}
		}
	}

	public boolean hasWork() {
		return scheduler.hasWork();
	}

	/**
	 * Ends, with a {@link RequestTimeoutException}, every request whose deadline is before {@code now}.
	 * Called every loop turn, so it returns at once until the earliest deadline has passed.
	 */
	public void expire(long now) {
		if (!deadlines.due(now)) {
			return;
		}
		deadlines.clear();
		for (Request r : new ArrayList<>(requests.values())) {
			if (r.deadlineNanos != 0 && now - r.deadlineNanos > 0) {
				fail(r, new RequestTimeoutException("the request did not finish within its deadline ("
						+ (now - r.arrivalNanos) / 1_000_000 + " ms since it arrived); its generation was stopped"));
			}
			else {
				deadlines.add(r.deadlineNanos);
			}
		}
	}

	/**
	 * One iteration: schedule, run the model, process the output. A failure while processing one
	 * sequence's output fails that request alone; a failure of the forward pass propagates (the caller
	 * then fails every request with {@link #failAll}).
	 * @return whether the model ran (false when nothing could be scheduled)
	 */
	public boolean step() {
		SchedulerOutput<EngineSequence> out = scheduler.schedule();
		for (int i = 0; i < out.preempted().size(); i++) {
			listener.onPreemption();
		}
		int n = out.count();
		if (n == 0) {
			return false;
		}
		long t0 = System.nanoTime();
		faults.at(FaultInjector.Stage.FORWARD, null, null);
		runner.execute(out);
		long now = System.nanoTime();
		listener.onStep(out.totalTokens(), n, now - t0);
		for (int i = 0; i < n; i++) {
			EngineSequence s = out.seq(i);
			if (s.status() == Sequence.Status.FINISHED) {
				continue; // its request failed earlier in this loop
			}
			s.request.scheduled(t0, s.numComputed());
			int drafts = s.draftsIn(out.numNewTokens(i));
			if (drafts > 0) {
				verify(s, i, drafts, now);
				continue;
			}
			int due = s.promptLogprobRows(out.numNewTokens(i));
			if (due > 0 && !promptLogprobs(s, i, due)) {
				continue; // its request failed
			}
			s.advance(out.numNewTokens(i));
			scheduler.commit(s);
			if (s.readyToSample()) {
				if (s.request.params.embed()) {
					embedded(s, runner.hiddenOffset(i));
				}
				else {
					postprocess(s, runner.rowOffset(i), runner.greedy(i), now);
				}
			}
		}
		return true;
	}

	/**
	 * Step sequence {@code i} computed its last token and {@code drafts} draft tokens after it. Each row in
	 * turn makes the next token exactly as a plain step would (greedy, or sampled with the sequence's own
	 * random stream, masks, penalties and logprobs, through the output processor); a draft is kept when that
	 * token equals it, and the first token that differs, or the one after the last draft, ends the step. So
	 * the output is token for token the one without speculation (a seed included), and a sampled draft is
	 * kept with the probability the sampler gives it: for a draft proposed with certainty that is speculative
	 * sampling's rule, the rejected case drawing from the rest of the distribution. Stop strings, EOS and
	 * max_tokens end the sequence at the same token. The KV of rejected drafts is overwritten later.
	 */
	private void verify(EngineSequence s, int i, int drafts, long now) {
		if (draftScratch.length < drafts) {
			draftScratch = new int[Math.max(drafts, 2 * draftScratch.length)];
		}
		System.arraycopy(s.tokens(), s.numTokens(), draftScratch, 0, drafts); // appending overwrites them
		s.clearDrafts();
		int accepted = 0;
		try {
			for (int j = 0; j <= drafts; j++) {
				FinishReason reason = processor.process(s, runner.logits(), runner.rowOffset(i, j), runner.greedy(i, j), now);
				boolean kept = j < drafts && s.tokens()[s.numTokens() - 1] == draftScratch[j];
				if (kept) {
					accepted++;
				}
				if (reason != null) {
					speculated(drafts, accepted);
					finish(s, reason);
					return;
				}
				if (!kept) {
					break;
				}
			}
		}
		catch (RuntimeException e) {
			speculated(drafts, accepted);
			fail(s.request, new EngineException("request failed: " + e, e));
			return;
		}
		speculated(drafts, accepted);
		s.advance(1 + accepted); // the last real token and the accepted drafts: all but the newest token
		scheduler.commit(s);
	}

	/**
	 * Runs what follows without counting it: no metrics, no prefix-cache statistics, no speculation totals
	 * (the server's own warm-up requests), until called again with false.
	 */
	void quiet(boolean quiet) {
		listener.quiet = quiet;
		kv.countPrefixStats(!quiet);
	}

	private void speculated(int drafts, int accepted) {
		if (!listener.quiet) {
			draftTokens += drafts;
			acceptedDraftTokens += accepted;
		}
		listener.onSpeculation(drafts, accepted);
	}

	/** The prompt logprobs the step made due for step sequence {@code i}; false when that failed its request. */
	private boolean promptLogprobs(EngineSequence s, int i, int due) {
		try {
			int first = s.firstPromptLogprobRow() - s.numComputed();
			for (int done = 0; done < due;) {
				int count = Math.min(due - done, runner.tokenLogitsRows());
				float[] rows = runner.tokenLogits(i, first + done, count);
				for (int r = 0; r < count; r++) {
					processor.promptLogprob(s, rows, r * vocab);
				}
				done += count;
			}
			return true;
		}
		catch (RuntimeException e) {
			fail(s.request, new EngineException("request failed: " + e, e));
			return false;
		}
	}

	private void postprocess(EngineSequence s, int rowOffset, int greedy, long now) {
		Request r = s.request;
		try {
			if (s.forksNow()) {
				fork(s);
				for (int c = 1; c < r.seqs.size(); c++) {
					emit(r.seqs.get(c), rowOffset, greedy, now);
				}
			}
			emit(s, rowOffset, greedy, now);
		}
		catch (RuntimeException e) {
			fail(r, new EngineException("request failed: " + e, e));
		}
	}

	/** An embedding request whose prompt is computed: its pooled row, then its end. */
	private void embedded(EngineSequence s, int hiddenOffset) {
		try {
			processor.embedding(s, runner.hidden(), hiddenOffset, runner.hiddenSize());
			finish(s, FinishReason.STOP);
		}
		catch (RuntimeException e) {
			fail(s.request, new EngineException("request failed: " + e, e));
		}
	}

	private void emit(EngineSequence s, int rowOffset, int greedy, long now) {
		FinishReason reason = processor.process(s, runner.logits(), rowOffset, greedy, now);
		if (reason != null) {
			finish(s, reason);
		}
	}

	/** Creates the n-1 siblings of a sequence whose prompt is computed: they share all its blocks. */
	private void fork(EngineSequence parent) {
		Request r = parent.request;
		long base = seed(r.params);
		for (int c = 1; c < r.params.n(); c++) {
			EngineSequence child = new EngineSequence(nextSeqId++, parent, c, base + c, tokenizer);
			r.seqs.add(child);
			scheduler.fork(parent, child);
		}
	}

	private static long seed(SamplingParams p) {
		return p.seed() != null ? p.seed() : ThreadLocalRandom.current().nextLong();
	}

	/** Ends a choice: frees its blocks and sends its final event; the request completes with its last choice. */
	private void finish(EngineSequence s, FinishReason reason) {
		Request r = s.request;
		scheduler.remove(s);
		r.output.event(OutputProcessor.finalEvent(s, reason));
		long now = System.nanoTime();
		listener.onFinished(reason, now - r.arrivalNanos, r.firstTokenNanos == 0 ? 0 : now - r.firstTokenNanos,
				r.prompt.length, s.numOutputTokens());
		// Siblings are forked before their parent samples its first token, so a request whose choices have
		// all finished is done: a parent finishes earlier only when aborted, and then there are no siblings.
		if (r.allFinished()) {
			forget(r);
			int generated = r.seqs.stream().mapToInt(EngineSequence::numOutputTokens).sum(); // once per request
			listener.onRequestFinished(r.prompt.length, generated, r.params.n(), r.maxTokens,
					r.firstScheduledNanos == 0 ? 0 : now - r.firstScheduledNanos);
			r.output.complete();
		}
	}

	/** Fails one request: frees every choice's blocks and reports the error to its output alone. */
	private void fail(Request r, EngineException e) {
		for (EngineSequence s : r.seqs) {
			if (s.status() != Sequence.Status.FINISHED) {
				scheduler.remove(s);
			}
		}
		forget(r);
		r.output.fail(e);
	}

	private void forget(Request r) {
		requests.remove(r.id); // its deadline, if earliest, only makes the next expire scan once
	}

	/** Fails every live request (after a failed forward pass, or at shutdown); the core stays usable. */
	public void failAll(Throwable cause) {
		for (Request r : new ArrayList<>(requests.values())) {
			fail(r, new EngineException("generation failed: " + cause.getMessage(), cause));
		}
	}

	/** What the dashboard shows: the block pool, every live sequence, and running totals. */
	public EngineSnapshot snapshot() {
		return EngineSnapshot.of(requests.values(), kv.snapshot(), scheduler.numRunning(), scheduler.numWaiting(),
				processor.generatedTokens(), processor.promptTokens(), scheduler.preemptions(), processor.recentTtftMillis(), draftTokens, acceptedDraftTokens);
	}

	public int numRunning() {
		return scheduler.numRunning();
	}

	public int numWaiting() {
		return scheduler.numWaiting();
	}

	public long preemptions() {
		return scheduler.preemptions();
	}

	public int maxModelLen() {
		return maxModelLen;
	}

	public KvCacheManager kv() {
		return kv;
	}

	/** Releases the runner's buffers; model and cache belong to the caller. */
	@Override
	public void close() {
		runner.close();
	}
}
