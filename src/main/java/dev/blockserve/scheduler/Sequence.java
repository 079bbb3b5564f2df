package dev.blockserve.scheduler;

import java.util.Arrays;

import dev.blockserve.kvcache.BlockTable;

/**
 * What the scheduler knows of one sequence: its tokens (prompt, then generated), how many of them have
 * their KV in the cache, its block table, and its place in the policy order (priority, then arrival).
 * The engine extends it with sampling and streaming state. Owned by the engine thread.
 */
public class Sequence {

	public enum Status {
		WAITING, RUNNING, FINISHED
	}

	protected final long id;

	protected final int priority;

	protected final long arrival;

	protected int[] tokens;

	protected int numTokens;

	protected final int promptLength;

	protected int numComputed;

	protected BlockTable table;

	protected Status status = Status.WAITING;

	/**
	 * Draft tokens proposed for the next step, kept in {@code tokens[numTokens..numTokens+numDrafts)}: not
	 * part of the sequence until the step verifies them. Cleared after each step and on preemption.
	 */
	protected int numDrafts;

	public Sequence(long id, int[] prompt, int priority, long arrival) {
		this.id = id;
		this.priority = priority;
		this.arrival = arrival;
		this.tokens = Arrays.copyOf(prompt, prompt.length + 16);
		this.numTokens = prompt.length;
		this.promptLength = prompt.length;
	}

	/** A sibling sharing {@code parent}'s tokens so far (for n > 1). */
	protected Sequence(long id, Sequence parent) {
		this.id = id;
		this.priority = parent.priority;
		this.arrival = parent.arrival;
		this.tokens = parent.tokens.clone();
		this.numTokens = parent.numTokens;
		this.promptLength = parent.promptLength;
		this.numComputed = parent.numComputed;
	}

	/**
	 * Whether the scheduler may start this sequence from cached prefix blocks. A sequence that must see
	 * every prompt position computed (prompt logprobs) says no; its blocks still enter the cache.
	 */
	public boolean readsPrefixCache() {
		return true;
	}

	/**
	 * How many draft tokens this sequence could use in its next step: 0 when it must not speculate (it
	 * generates nothing, or has no room left). The engine decides.
	 */
	public int maxDrafts() {
		return 0;
	}

	public int numDrafts() {
		return numDrafts;
	}

	/** Proposes drafts with {@code drafter}, at most {@code max}; returns how many it now holds. */
	int propose(NgramDrafter drafter, int max) {
		if (tokens.length < numTokens + max) {
			tokens = Arrays.copyOf(tokens, Math.max(numTokens + max, tokens.length * 2));
		}
		numDrafts = drafter.draft(tokens, numTokens, max);
		return numDrafts;
	}

	/** Forgets the drafts (the step verified them, or the sequence was preempted or could not fit them). */
	public void clearDrafts() {
		numDrafts = 0;
	}

	/** The prefix cache this sequence shares (vLLM's cache_salt); null for the common one. */
	public String cacheSalt() {
		return null;
	}

	public long id() {
		return id;
	}

	public int priority() {
		return priority;
	}

	public long arrival() {
		return arrival;
	}

	public int[] tokens() {
		return tokens;
	}

	public int numTokens() {
		return numTokens;
	}

	public int promptLength() {
		return promptLength;
	}

	public int numOutputTokens() {
		return numTokens - promptLength;
	}

	public int numComputed() {
		return numComputed;
	}

	public BlockTable table() {
		return table;
	}

	public Status status() {
		return status;
	}

	/** Records that the step computed {@code n} more tokens' KV. */
	public void advance(int n) {
		numComputed += n;
	}

	public void append(int token) {
		if (numTokens == tokens.length) {
			tokens = Arrays.copyOf(tokens, numTokens * 2);
		}
		tokens[numTokens++] = token;
	}

	/**
	 * True when every token has its KV computed: the step that just ran computed the last token, so its
	 * logits predict the next one. False after a prefill chunk that stops short of the prompt's end.
	 */
	public boolean readyToSample() {
		return numComputed == numTokens;
	}

	@Override
	public String toString() {
		return "Sequence[" + id + ", " + status + ", tokens " + numTokens + ", computed " + numComputed + "]";
	}
}
