package dev.blockserve.scheduler;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.kvcache.BlockCopies;

/**
 * One step's plan, reused from step to step: which sequences run with how many new tokens each, the
 * copy-on-write copies to do first, and who was preempted. Written by the scheduler, read by the engine,
 * both on the engine thread.
 */
public final class SchedulerOutput<S extends Sequence> {

	private Sequence[] seqs = new Sequence[64];

	int[] numNew = new int[64];

	int count;

	int totalTokens;

	final BlockCopies copies = new BlockCopies();

	final List<S> preempted = new ArrayList<>();

	void clear() {
		Arrays.fill(seqs, 0, count, null);
		count = 0;
		totalTokens = 0;
		copies.clear();
		preempted.clear();
	}

	void add(S s, int n) {
		if (count == seqs.length) {
			seqs = Arrays.copyOf(seqs, count * 2);
			numNew = Arrays.copyOf(numNew, count * 2);
		}
		seqs[count] = s;
		numNew[count] = n;
		count++;
		totalTokens += n;
	}

	/** Adds {@code extra} tokens (drafts) to planned entry {@code i}. */
	void extend(int i, int extra) {
		numNew[i] += extra;
		totalTokens += extra;
	}

	public int count() {
		return count;
	}

	@SuppressWarnings("unchecked") // only add(S) writes the array
	public S seq(int i) {
		return (S) seqs[i];
	}

	public int numNewTokens(int i) {
		return numNew[i];
	}

	public int totalTokens() {
		return totalTokens;
	}

	/** Copy-on-write block copies to perform before the step's forward pass. */
	public BlockCopies copies() {
		return copies;
	}

	/** Sequences preempted by this step (their blocks are already freed). */
	public List<S> preempted() {
		return preempted;
	}
}
