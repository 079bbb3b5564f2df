package dev.blockserve.engine;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

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
	}
}
