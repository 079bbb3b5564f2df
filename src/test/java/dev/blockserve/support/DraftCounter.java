package dev.blockserve.support;

import dev.blockserve.engine.EngineListener;

/** Counts what speculation drafted and accepted, and the steps that ran (engine thread; read after the run). */
public final class DraftCounter implements EngineListener {

	public long drafted;

	public long accepted;

	public long steps;

	public void reset() {
		drafted = accepted = steps = 0;
	}

	@Override
	public void onStep(int tokens, int seqs, long nanos) {
		steps++;
	}

	@Override
	public void onSpeculation(int d, int a) {
		if (a < 0 || a > d) {
			throw new AssertionError("accepted " + a + " of " + d + " drafts");
		}
		drafted += d;
		accepted += a;
	}
}
