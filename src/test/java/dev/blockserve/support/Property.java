package dev.blockserve.support;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A small property-based testing loop: draw many random operation sequences from seeded generators, run
 * each through a check that throws on a violated property, and on the first failure shrink the sequence
 * (drop chunks, then single operations, while it still fails) before reporting the seed and the minimal
 * counterexample. Element 0 of a sequence (a setup, such as pool dimensions) is never dropped.
 */
public final class Property {

	private Property() {
	}

	public static <O> void forAll(String name, int trials, long seed, Function<Random, List<O>> generator,
			Consumer<List<O>> check) {
		Random seeds = new Random(seed);
		for (int trial = 0; trial < trials; trial++) {
			long trialSeed = seeds.nextLong();
			List<O> ops = generator.apply(new Random(trialSeed));
			Throwable failure = run(check, ops);
			if (failure != null) {
				List<O> small = shrink(check, ops);
				Throwable smallFailure = run(check, small);
				StringBuilder sb = new StringBuilder();
				sb.append(name).append(" falsified at trial ").append(trial).append(" (trial seed ").append(trialSeed)
					.append("); shrunk from ").append(ops.size()).append(" to ").append(small.size())
					.append(" operations:\n");
				for (O o : small) {
					sb.append("  ").append(o).append('\n');
				}
				sb.append("failure: ").append(smallFailure);
				throw new AssertionError(sb.toString(), smallFailure);
			}
		}
	}

	private static <O> Throwable run(Consumer<List<O>> check, List<O> ops) {
		try {
			check.accept(ops);
			return null;
		}
		catch (Throwable t) {
			return t;
		}
	}

	static <O> List<O> shrink(Consumer<List<O>> check, List<O> ops) {
		List<O> cur = new ArrayList<>(ops);
		for (int chunk = Math.max(1, (cur.size() - 1) / 2); chunk >= 1; chunk /= 2) {
			boolean progress = true;
			while (progress) {
				progress = false;
				for (int start = 1; start + chunk <= cur.size(); start += chunk) {
					List<O> cand = new ArrayList<>(cur.subList(0, start));
					cand.addAll(cur.subList(start + chunk, cur.size()));
					if (run(check, cand) != null) {
						cur = cand;
						progress = true;
						break;
					}
				}
			}
		}
		return cur;
	}
}
