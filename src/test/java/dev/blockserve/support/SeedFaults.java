package dev.blockserve.support;

import dev.blockserve.engine.FaultInjector;

/**
 * A fault injector keyed by a request's seed: seed 1001 throws while sampling, 1002 while
 * detokenising, 1003 while checking stops; every other request runs normally.
 */
public final class SeedFaults implements FaultInjector {

	public static final long SAMPLE = 1001, DETOKENIZE = 1002, STOP_CHECK = 1003;

	@Override
	public void at(Stage stage, int[] prompt, dev.blockserve.engine.SamplingParams params) {
		Long s = params == null ? null : params.seed();
		if (s != null && ((s == SAMPLE && stage == Stage.SAMPLE) || (s == DETOKENIZE && stage == Stage.DETOKENIZE)
				|| (s == STOP_CHECK && stage == Stage.STOP_CHECK))) {
			throw new IllegalStateException("injected " + stage + " fault");
		}
	}
}
