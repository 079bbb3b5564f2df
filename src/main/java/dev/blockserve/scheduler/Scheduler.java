package dev.blockserve.scheduler;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.kvcache.PrefixMatch;

/**
 * Iteration-level scheduling. Each step first serves the running sequences, in policy order, with one
 * decode token or the next prefill chunk each; then, if nothing had to be preempted, admits waiting
 * sequences in policy order while the token budget, the sequence budget and the KV pool allow, skipping
 * the prompt tokens the prefix cache already holds. Prompt chunks (a sequence bringing more than one token)
 * also draw on the step's prompt budget where one is set and a running sequence decodes; decodes do not touch
 * it. Last, with speculation on and a small batch, it gives decoding sequences draft tokens from what budget
 * and pool still have. When a running sequence cannot get its blocks, the least important running
 * sequence (the last in policy order) is preempted by recompute: its blocks are freed and it waits at the
 * head of the queue, to be recomputed from its tokens later.
 * <p>
 * The scheduler sees KV blocks only through the {@link KvCacheManager} and each sequence's opaque
 * {@link dev.blockserve.kvcache.BlockTable} handle. It is generic in the sequence type so that its caller
 * gets its own sequences back from {@link SchedulerOutput} without casts.
 * <p>
 * Plain Java, single-threaded: the engine thread owns it.
 */
public final class Scheduler<S extends Sequence> {

	private static final Comparator<Sequence> POLICY_ORDER = Comparator.comparingInt(Sequence::priority)
		.thenComparingLong(Sequence::arrival)
		.thenComparingLong(Sequence::id);

	private final KvCacheManager kv;

	private final SchedulerConfig config;

	/** Running sequences, kept in policy order: the most important first, preemption victims from the end. */
	private final List<S> running = new ArrayList<>();

	private final WaitingQueue<S> waiting;

	private final SchedulerOutput<S> out = new SchedulerOutput<>();

	private final PrefixMatch match = new PrefixMatch();

	private long preemptions;

	/** Null when speculation is off. */
	private final NgramDrafter drafter;

	public Scheduler(KvCacheManager kv, SchedulerConfig config) {
		this.kv = kv;
		this.config = config;
		this.waiting = WaitingQueue.of(config.policy(), POLICY_ORDER);
		this.drafter = config.speculative().enabled() ? new NgramDrafter(config.speculative()) : null;
	}

	public SchedulerConfig config() {
		return config;
	}

	public void addWaiting(S s) {
		s.status = Sequence.Status.WAITING;
		waiting.add(s);
	}

	/** Adds a sequence that already holds its blocks (a forked sibling) to the running set. */
	public void addRunning(S s) {
		s.status = Sequence.Status.RUNNING;
		insertRunning(s);
	}

	/** Adds {@code child}, a new sibling of the running {@code parent}, holding all of parent's blocks (shared). */
	public void fork(S parent, S child) {
		child.table = kv.fork(parent.table, child.id);
		addRunning(child);
	}

	private void insertRunning(S s) {
		int i = running.size();
		while (i > 0 && POLICY_ORDER.compare(running.get(i - 1), s) > 0) {
			i--;
		}
		running.add(i, s);
	}

	public int numRunning() {
		return running.size();
	}

	public int numWaiting() {
		return waiting.size();
	}

	public long preemptions() {
		return preemptions;
	}

	public boolean hasWork() {
		return !running.isEmpty() || !waiting.isEmpty();
	}

	/** Plans the next step. The returned object is reused by the next call. */
	public SchedulerOutput<S> schedule() {
		out.clear();
		int budget = config.maxNumBatchedTokens();
		int prompts = config.maxPrefillTokens() > 0 && anyDecoding() ? config.maxPrefillTokens() : Integer.MAX_VALUE;
		boolean preempted = false;
		int i = 0;
		while (i < running.size() && budget > 0) {
			S s = running.get(i);
			s.clearDrafts();
			boolean prompt = isPrompt(s);
			int n = Math.min(chunk(s), prompt ? Math.min(budget, prompts) : budget);
			if (n == 0) {
				i++; // a prompt chunk, and the step's prompt tokens are spent: it waits, the decodes after it run
				continue;
			}
			boolean scheduled = true;
			while (!kv.allocate(s.table, s.numComputed + n, null)
					|| !kv.prepareWrite(s.table, s.numComputed, s.numComputed + n, out.copies)) {
				S victim = running.get(running.size() - 1);
				preempt(victim);
				running.remove(running.size() - 1);
				preempted = true;
				if (victim == s) {
					scheduled = false;
					break;
				}
			}
			if (!scheduled) {
				break; // s was the last running sequence; nothing after it is left
			}
			out.add(s, n);
			budget -= n;
			if (prompt) {
				prompts -= n;
			}
			i++;
		}
		if (!preempted) {
			while (!waiting.isEmpty() && running.size() < config.maxNumSeqs() && budget > 0 && prompts > 0) {
				S s = waiting.peek();
				PrefixMatch m = null;
				if (s.table == null) {
					s.table = kv.newTable(s.id, s.cacheSalt());
					if (s.readsPrefixCache()) {
						m = kv.matchPrefix(s.table, s.tokens, s.numTokens, match);
						s.numComputed = m.cachedTokens(kv.blockSize());
					}
				}
				boolean prompt = isPrompt(s);
				int n = Math.min(chunk(s), prompt ? Math.min(budget, prompts) : budget);
				if (!kv.allocate(s.table, s.numComputed + n, m)
						|| !kv.prepareWrite(s.table, s.numComputed, s.numComputed + n, out.copies)) {
					// All or nothing: give the table back, so the next attempt matches the prefix afresh.
					kv.free(s.table);
					s.table = null;
					s.numComputed = 0;
					break;
				}
				waiting.poll();
				s.status = Sequence.Status.RUNNING;
				insertRunning(s);
				out.add(s, n);
				budget -= n;
				if (prompt) {
					prompts -= n;
				}
			}
		}
		if (drafter != null && !preempted && running.size() <= config.speculative().maxBatch()) {
			draft(budget);
		}
		return out;
	}

	/**
	 * Gives the step's decoding sequences drafts from what the step leaves: token budget and free blocks after
	 * every running sequence and every admission, so drafts never delay a prompt nor cost anyone a block.
	 */
	private void draft(int budget) {
		for (int j = 0; j < out.count && budget > 0; j++) {
			S s = out.seq(j);
			if (s.numComputed != s.numTokens - 1 || out.numNew[j] != 1) {
				continue; // not decoding: a prefill chunk
			}
			int max = Math.min(Math.min(config.speculative().numTokens(), s.maxDrafts()), budget);
			if (max <= 0 || s.propose(drafter, max) == 0) {
				continue;
			}
			int end = s.numTokens + s.numDrafts;
			if (kv.allocate(s.table, end, null) && kv.prepareWrite(s.table, s.numTokens, end, out.copies)) {
				out.extend(j, s.numDrafts);
				budget -= s.numDrafts;
			}
			else {
				s.clearDrafts(); // no block for them: the plain decode stands
			}
		}
	}

	/**
	 * Whether a running sequence decodes: the prompt budget keeps their steps short; with none decoding there is
	 * nothing to keep short, and a lone prompt goes in chunks of the token budget and threshold alone.
	 */
	private boolean anyDecoding() {
		for (int i = 0; i < running.size(); i++) {
			if (!isPrompt(running.get(i))) {
				return true;
			}
		}
		return false;
	}

	/** Whether the sequence has more than one token to compute: a prompt (or what a preemption left), not a decode. */
	private static boolean isPrompt(Sequence s) {
		return s.numTokens + s.numDrafts - s.numComputed > 1;
	}

	/**
	 * New tokens the sequence would bring: all it has not computed (its drafts included), capped for long
	 * prefills.
	 */
	private int chunk(Sequence s) {
		int n = s.numTokens + s.numDrafts - s.numComputed;
		int cap = config.longPrefillTokenThreshold();
		return cap > 0 && n > cap ? cap : n;
	}

	private void preempt(S s) {
		s.clearDrafts();
		kv.free(s.table);
		s.table = null;
		s.numComputed = 0;
		s.status = Sequence.Status.WAITING;
		preemptions++;
		out.preempted.add(s);
		waiting.prepend(s);
	}

	/** Removes a sequence (finished or aborted) wherever it is, freeing its blocks. */
	public void remove(S s) {
		if (s.status == Sequence.Status.RUNNING) {
			running.remove(s);
		}
		else if (s.status == Sequence.Status.WAITING) {
			waiting.remove(s);
		}
		if (s.table != null) {
			kv.free(s.table);
			s.table = null;
		}
		s.status = Sequence.Status.FINISHED;
	}

	/**
	 * After a step: registers the blocks that the sequence's computed tokens now fill, and, with a sliding
	 * window, frees the blocks its next tokens will never read.
	 */
	public void commit(S s) {
		kv.commit(s.table, s.tokens, s.numComputed);
		kv.removeSkipped(s.table, s.numComputed);
	}

	public KvCacheManager kv() {
		return kv;
	}
}
