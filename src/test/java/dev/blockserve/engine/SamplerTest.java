package dev.blockserve.engine;

import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SamplerTest {

	/**
	 * logprobs 0 (OpenAI's chat "logprobs": true without top_logprobs) asks for the sampled token's
	 * logprob and no alternatives. It used to throw "Index -1 out of bounds", which failed the whole batch.
	 */
	@Test
	void logprobsWithoutAlternatives() {
		Sampler s = new Sampler(5);
		float[] logits = { 0.5f, 2f, -1f, 0f, 1f };
		Sampler.Logprobs lp = new Sampler.Logprobs();
		SamplingParams p = SamplingParams.greedy(1).toBuilder().logprobs(0).build();
		int token = s.sample(logits, 0, p, new int[] { 1 }, 1, 1, new SplittableRandom(1), lp);
		assertThat(token).isEqualTo(1);
		assertThat(lp.topIds).isEmpty();
		double z = 0;
		for (float l : logits) {
			z += Math.exp(l);
		}
		assertThat((double) lp.tokenLogprob).isCloseTo(2 - Math.log(z), org.assertj.core.data.Offset.offset(1e-5));
	}

	@Test
	void topLogprobsAreTheLargestInOrder() {
		Sampler s = new Sampler(5);
		float[] logits = { 0.5f, 2f, -1f, 0f, 1f };
		Sampler.Logprobs lp = new Sampler.Logprobs();
		s.sample(logits, 0, SamplingParams.greedy(1).toBuilder().logprobs(3).build(), new int[] { 1 }, 1, 1,
				new SplittableRandom(1), lp);
		assertThat(lp.topIds).containsExactly(1, 4, 0);
		assertThat(lp.tokenRank).isEqualTo(1);
		s.logprobs(logits, 0, 2, 0, lp); // the least likely of five
		assertThat(lp.tokenRank).isEqualTo(5);
		s.logprobs(logits, 0, 3, 0, lp);
		assertThat(lp.tokenRank).isEqualTo(4);
	}

	/** OpenAI's logit_bias is added to the raw logits before anything else; logprobs stay the model's own. */
	@Test
	void logitBiasMovesTheGreedyTokenAndLeavesLogprobsRaw() {
		Sampler s = new Sampler(5);
		float[] logits = { 0.5f, 2f, -1f, 0f, 1f };
		Sampler.Logprobs lp = new Sampler.Logprobs();
		SamplingParams banBest = SamplingParams.greedy(1).toBuilder().logprobs(1)
			.logitBias(SamplingParams.LogitBias.of(Map.of(1, -100))).build();
		assertThat(s.sample(logits, 0, banBest, new int[] { 1 }, 1, 1, new SplittableRandom(1), lp)).isEqualTo(4);
		assertThat(lp.topIds).containsExactly(1); // the unbiased distribution
		SamplingParams force = SamplingParams.greedy(1).toBuilder()
			.logitBias(SamplingParams.LogitBias.of(Map.of(2, 100))).build();
		assertThat(s.sample(logits, 0, force, new int[] { 1 }, 1, 1, new SplittableRandom(1), null)).isEqualTo(2);
		// sampling at temperature 1 draws only the forced token: the others are e^-97 or less as likely
		SamplingParams forceSampled = force.toBuilder().temperature(1).build();
		SplittableRandom rng = new SplittableRandom(7);
		for (int i = 0; i < 200; i++) {
			assertThat(s.sample(logits, 0, forceSampled, new int[] { 1 }, 1, 1, rng, null)).isEqualTo(2);
		}
		assertThat(logits).containsExactly(0.5f, 2f, -1f, 0f, 1f); // the row itself is not modified
	}

	/** vLLM's min_tokens: EOS and the stop tokens cannot come before the output has that many tokens. */
	@Test
	void minTokensMasksEosAndStopTokensUntilReached() {
		Sampler s = new Sampler(5, new int[] { 1 });
		float[] logits = { 0.5f, 2f, -1f, 0f, 1f };
		SamplingParams p = SamplingParams.greedy(8).toBuilder().minTokens(2).stopTokenIds(new int[] { 4 }).build();
		int[] tokens = { 3, 0, 0, 0 };
		assertThat(s.sample(logits, 0, p, tokens, 1, 1, new SplittableRandom(1), null)).as("0 generated").isEqualTo(0);
		assertThat(s.sample(logits, 0, p, tokens, 1, 2, new SplittableRandom(1), null)).as("1 generated").isEqualTo(0);
		assertThat(s.sample(logits, 0, p, tokens, 1, 3, new SplittableRandom(1), null)).as("2 generated").isEqualTo(1);
		SamplingParams ignoreEos = p.toBuilder().ignoreEos(true).build();
		assertThat(s.sample(logits, 0, ignoreEos, tokens, 1, 1, new SplittableRandom(1), null)).isEqualTo(1);
	}

	/** When a grammar allows only tokens that min_tokens forbids, the request fails with a message (the client's error), not a bad token. */
	@Test
	void minTokensAgainstAGrammarThatMayOnlyEnd() {
		Sampler s = new Sampler(5, new int[] { 1 });
		float[] logits = { 0.5f, 2f, -1f, 0f, 1f };
		SamplingParams p = SamplingParams.greedy(8).toBuilder().minTokens(3).build();
		long[] onlyEos = { 1L << 1 };
		assertThatThrownBy(() -> s.sample(logits, 0, p, new int[] { 3 }, 1, 1, new SplittableRandom(1), null, onlyEos))
			.isInstanceOf(UnsatisfiableRequestException.class).hasMessageContaining("min_tokens");
		long[] eosOrThree = { (1L << 1) | (1L << 3) };
		assertThat(s.sample(logits, 0, p, new int[] { 3 }, 1, 1, new SplittableRandom(1), null, eosOrThree)).isEqualTo(3);
	}

	/** vLLM's bad_words: a one-token word is never chosen; a longer word's last token only right after the rest of it. */
	@Test
	void badWordsBanTheTokenThatWouldCompleteThem() {
		Sampler s = new Sampler(5, new int[] { 0 });
		float[] logits = { 0f, 1f, 2f, 3f, 4f };
		SamplingParams p = SamplingParams.greedy(8).toBuilder().badWords(new int[][] { { 4 }, { 2, 3 } }).build();
		assertThat(p.needsLogitsRow()).isTrue();
		// prompt [1], no output yet: 4 is banned, "2 3" cannot complete
		assertThat(s.sample(logits, 0, p, new int[] { 1 }, 1, 1, new SplittableRandom(1), null)).isEqualTo(3);
		// output ends with 2: 3 would complete "2 3", so 2 is the best left
		assertThat(s.sample(logits, 0, p, new int[] { 1, 2 }, 1, 2, new SplittableRandom(1), null)).isEqualTo(2);
		// a 2 in the prompt does not count (only the output does, as in vLLM)
		assertThat(s.sample(logits, 0, p, new int[] { 2 }, 1, 1, new SplittableRandom(1), null)).isEqualTo(3);
		assertThatThrownBy(() -> SamplingParams.greedy(8).toBuilder().badWords(new int[][] { {} }).build())
			.hasMessageContaining("bad_words");
	}

	@Test
	void badValuesAreRefusedWithTheirField() {
		assertThatThrownBy(() -> SamplingParams.LogitBias.of(Map.of(3, 100.5)))
			.hasMessageContaining("logit_bias").hasMessageContaining("100.5");
		assertThatThrownBy(() -> SamplingParams.LogitBias.of(Map.of(-1, 1)))
			.hasMessageContaining("logit_bias").hasMessageContaining("-1");
		assertThatThrownBy(() -> SamplingParams.greedy(4).toBuilder().minTokens(5).build())
			.hasMessageContaining("min_tokens must be less than or equal to max_tokens");
		assertThatThrownBy(() -> SamplingParams.greedy(4).toBuilder().stopTokenIds(new int[] { -2 }).build())
			.hasMessageContaining("stop_token_ids");
		assertThat(SamplingParams.greedy(0).toBuilder().minTokens(100).build().minTokens()).isEqualTo(100);
	}

	/** The reference: sort every token by (probability, id) descending and walk, as the sampler did before buckets. */
	static boolean[] referenceKept(float[] probs, int k, double topP, double minP) {
		int n = probs.length;
		long[] c = new long[n];
		float top = 0;
		for (int i = 0; i < n; i++) {
			c[i] = ((long) Float.floatToRawIntBits(probs[i]) << 32) | i;
			top = Math.max(top, probs[i]);
		}
		java.util.Arrays.sort(c);
		float minProb = (float) (minP * top);
		boolean[] kept = new boolean[n];
		double cum = 0;
		for (int j = 0; j < Math.min(k, n); j++) {
			float pr = Float.intBitsToFloat((int) (c[n - 1 - j] >>> 32));
			if (j > 0 && (cum >= topP || pr < minProb || pr <= 0)) {
				break;
			}
			kept[(int) c[n - 1 - j]] = true;
			cum += pr;
		}
		return kept;
	}

	/**
	 * top-k, top-p and min-p keep exactly the tokens a full sort keeps, for flat and peaked distributions,
	 * ties, masked tokens and every combination of limits. (The sort cost 5 ms a token at top_p 0.9 on a flat
	 * 49,152-token distribution; the buckets that replaced it must not change what is kept.)
	 */
	@Test
	void truncationKeepsWhatAFullSortKeeps() {
		java.util.Random r = new java.util.Random(20261129);
		for (int trial = 0; trial < 3000; trial++) {
			int vocab = new int[] { 1, 2, 5, 100, 3000 }[r.nextInt(5)];
			double sigma = new double[] { 0.01, 0.5, 3, 12 }[r.nextInt(4)];
			boolean ties = r.nextInt(3) == 0;
			float[] logits = new float[vocab];
			for (int i = 0; i < vocab; i++) {
				double v = r.nextGaussian() * sigma;
				logits[i] = (float) (ties ? Math.round(v) : v);
				if (r.nextInt(5) == 0 && i > 0) {
					logits[i] = Float.NEGATIVE_INFINITY; // masked by a grammar
				}
			}
			float max = Float.NEGATIVE_INFINITY;
			for (float l : logits) {
				max = Math.max(max, l);
			}
			double sum = 0;
			float[] probs = new float[vocab];
			for (int i = 0; i < vocab; i++) {
				probs[i] = (float) Math.exp(logits[i] - max);
				sum += probs[i];
			}
			for (int i = 0; i < vocab; i++) {
				probs[i] = (float) (probs[i] / sum);
			}
			int k = new int[] { vocab, 1, 2, 5, 50, vocab + 3 }[r.nextInt(6)];
			double topP = new double[] { 1, 0.1, 0.5, 0.9, 0.99, 1e-9 }[r.nextInt(6)];
			double minP = new double[] { 0, 0, 0.01, 0.1, 0.5, 1 }[r.nextInt(6)];
			boolean[] expected = referenceKept(probs, k, topP, minP);
			boolean[] actual = new Sampler(vocab).keptOf(probs, Math.min(k, vocab), topP, minP);
			assertThat(actual).as("trial %d: vocab %d sigma %s ties %s k %d top_p %s min_p %s", trial, vocab, sigma, ties, k, topP,
					minP).containsExactly(expected);
		}
	}

	/** Draws follow the kept tokens' probabilities (top_p 0.8 over five tokens: the three likeliest stay). */
	@Test
	void drawsFollowTheKeptDistribution() {
		Sampler s = new Sampler(5);
		float[] logits = { (float) Math.log(0.4), (float) Math.log(0.1), (float) Math.log(0.3), (float) Math.log(0.15),
				(float) Math.log(0.05) };
		SamplingParams p = SamplingParams.builder().temperature(1).topP(0.8).maxTokens(1).build();
		int[] counts = new int[5];
		SplittableRandom rng = new SplittableRandom(42);
		int n = 40_000;
		for (int i = 0; i < n; i++) {
			counts[s.sample(logits, 0, p, new int[] { 0 }, 1, 1, rng, null)]++;
		}
		assertThat(counts[1]).isZero(); // 0.4 + 0.3 = 0.7 < 0.8, then 0.15 crosses it: 0.1 and 0.05 are out
		assertThat(counts[4]).isZero();
		double kept = 0.4 + 0.3 + 0.15;
		assertThat(counts[0] / (double) n).isCloseTo(0.4 / kept, org.assertj.core.data.Offset.offset(0.01));
		assertThat(counts[2] / (double) n).isCloseTo(0.3 / kept, org.assertj.core.data.Offset.offset(0.01));
		assertThat(counts[3] / (double) n).isCloseTo(0.15 / kept, org.assertj.core.data.Offset.offset(0.01));
	}
}
