package dev.blockserve.engine;

import java.util.SplittableRandom;

import dev.blockserve.scheduler.Sequence;

/** A scheduled sequence plus what the engine needs to sample, detokenise and stream it. */
final class EngineSequence extends Sequence {

	final Engine.Group group;

	final int index;

	final SplittableRandom rng;

	final IncrementalDetokenizer detok;

	final StopChecker stop;

	final Sampler.Logprobs logprobs = new Sampler.Logprobs();

	long lastTokenNanos;

	EngineSequence(long id, Engine.Group group, int[] prompt, long seed, IncrementalDetokenizer detok) {
		super(id, prompt, group.priority, group.arrivalNanos);
		this.group = group;
		this.index = 0;
		this.rng = new SplittableRandom(seed);
		this.detok = detok;
		this.stop = new StopChecker(group.params.stop());
	}

	/** Sibling {@code index} of {@code parent}, forked after the prompt. */
	EngineSequence(long id, EngineSequence parent, int index, long seed, IncrementalDetokenizer detok) {
		super(id, parent);
		this.group = parent.group;
		this.index = index;
		this.rng = new SplittableRandom(seed);
		this.detok = detok;
		this.stop = new StopChecker(group.params.stop());
	}

	void setTable(dev.blockserve.kvcache.BlockTable t) {
		this.table = t;
		this.status = Status.RUNNING;
	}
}
