package dev.blockserve.engine;

import java.util.Arrays;
import java.util.SplittableRandom;

import dev.blockserve.backend.HostMath;

/**
 * Picks the next token from one row of logits, vLLM's order: min_tokens (EOS and the stop tokens masked
 * until the output is that long), logit_bias, penalties (repetition over prompt and output, presence and
 * frequency over the output), then temperature, top-k, top-p, min-p, and a
 * draw from the request's own random stream (so a seeded request samples the same tokens whatever else is
 * in the batch). A grammar's mask removes disallowed tokens after the penalties, before temperature and
 * truncation, so greedy takes the best allowed token. Logprobs are of the raw model distribution. One instance per engine thread: it reuses
 * its scratch arrays, so sampling allocates nothing per token once warm.
 */
public final class Sampler {

	private final int vocab;

	/** The model's end-of-sequence tokens, which min_tokens masks unless the request ignores EOS. */
	private final int[] eos;

	private final float[] work;

	private final float[] probs;

	private final int[] counts;

	private final int[] touched;

	private long[] cand = new long[256];

	/**
	 * Probability buckets by a float's top 16 bits (sign, exponent, 7 bits of mantissa: 128 buckets a power
	 * of two); probabilities below 2 (all of them, rounding included) fall in the first 0x4000.
	 */
	private static final int BUCKET_SHIFT = 16;

	private final int[] bucketCount = new int[0x4000];

	private final double[] bucketMass = new double[0x4000];

	/** Tokens kept in the bucket where {@link #truncate}'s walk stopped; tokens in higher buckets are all kept. */
	private final boolean[] chosen;

	private int stopBucket;

	public Sampler(int vocab) {
		this(vocab, new int[0]);
	}

	public Sampler(int vocab, int[] eosTokenIds) {
		this.vocab = vocab;
		this.eos = eosTokenIds.clone();
		this.work = new float[vocab];
		this.probs = new float[vocab];
		this.counts = new int[vocab];
		this.touched = new int[vocab];
		this.chosen = new boolean[vocab];
	}

	/** Logprob of a token and its top alternatives, filled by {@link #sample} when asked. */
	public static final class Logprobs {

		public float tokenLogprob;

		/** 1 + how many tokens the row rates higher than the token (vLLM's rank). */
		public int tokenRank;

		public int[] topIds = new int[0];

		public float[] topLogprobs = new float[0];
	}

	/**
	 * @param logits the row, read at {@code offset}; not modified
	 * @param tokens the sequence: prompt {@code [0, promptLen)}, then generated tokens up to {@code numTokens}
	 * @param lp receives logprobs when not null and {@code p.logprobs() >= 0}
	 */
	public int sample(float[] logits, int offset, SamplingParams p, int[] tokens, int promptLen, int numTokens,
			SplittableRandom rng, Logprobs lp) {
		return sample(logits, offset, p, tokens, promptLen, numTokens, rng, lp, null);
	}

	/**
	 * As above, drawing only from the tokens whose bit is set in {@code allowed} (null: all).
	 * @throws IllegalStateException when the mask allows no token
	 */
	public int sample(float[] logits, int offset, SamplingParams p, int[] tokens, int promptLen, int numTokens,
			SplittableRandom rng, Logprobs lp, long[] allowed) {
		System.arraycopy(logits, offset, work, 0, vocab);
		boolean banned = numTokens - promptLen < p.minTokens() && banStops(p);
		applyBias(p.logitBias());
		applyPenalties(p, tokens, promptLen, numTokens);
		banBadWords(p.badWords(), tokens, promptLen, numTokens);
		if (allowed != null) {
			applyMask(allowed);
		}
		int best = argmax(work); // greedy's answer, and what shows that min_tokens left some token
		if (banned && work[best] == Float.NEGATIVE_INFINITY) {
			throw new UnsatisfiableRequestException("min_tokens: every token that may come next ends the output ("
					+ (numTokens - promptLen) + " of " + p.minTokens() + " tokens generated)");
		}
		int token = p.isGreedy() ? best : draw(p, rng, work[best]);
		if (lp != null && p.logprobs() >= 0) {
			logprobs(logits, offset, token, p.logprobs(), lp);
		}
		return token;
	}

	/** Masks EOS (unless ignored) and the stop tokens; whether it masked any. */
	private boolean banStops(SamplingParams p) {
		boolean any = false;
		if (!p.ignoreEos()) {
			for (int t : eos) {
				if (t >= 0 && t < vocab) {
					work[t] = Float.NEGATIVE_INFINITY;
					any = true;
				}
			}
		}
		for (int t : p.stopTokenIds()) {
			if (t < vocab) {
				work[t] = Float.NEGATIVE_INFINITY;
				any = true;
			}
		}
		return any;
	}

	private void applyBias(SamplingParams.LogitBias bias) {
		int[] ids = bias.ids();
		float[] values = bias.values();
		for (int i = 0; i < ids.length; i++) {
			work[ids[i]] += values[i];
		}
	}

	/**
	 * vLLM's bad_words: bans each word's last token where the output's latest tokens equal the word's others
	 * (only the output counts, as in vLLM; a one-token word is banned everywhere).
	 */
	private void banBadWords(int[][] words, int[] tokens, int promptLen, int numTokens) {
		for (int[] w : words) {
			int before = w.length - 1;
			if (numTokens - promptLen < before) {
				continue;
			}
			boolean match = true;
			for (int k = 0; k < before && match; k++) {
				match = tokens[numTokens - before + k] == w[k];
			}
			if (match) {
				work[w[before]] = Float.NEGATIVE_INFINITY; // ids were checked against the vocabulary at submission
			}
		}
	}

	private void applyPenalties(SamplingParams p, int[] tokens, int promptLen, int numTokens) {
		boolean rep = p.repetitionPenalty() != 1.0;
		boolean pf = p.presencePenalty() != 0 || p.frequencyPenalty() != 0;
		if (!rep && !pf) {
			return;
		}
		int nt = 0;
		for (int i = promptLen; i < numTokens; i++) {
			int t = tokens[i];
			if (counts[t]++ == 0) {
				touched[nt++] = t;
			}
		}
		if (rep) {
			float r = (float) p.repetitionPenalty();
			// each distinct token of prompt and output once: a negative count marks "already penalised"
			for (int i = 0; i < nt; i++) {
				penalise(touched[i], r);
			}
			for (int i = 0; i < promptLen; i++) {
				int t = tokens[i];
				if (counts[t] == 0) {
					counts[t] = -1;
					touched[nt++] = t;
					penalise(t, r);
				}
			}
		}
		if (pf) {
			for (int i = 0; i < nt; i++) {
				int t = touched[i];
				int c = counts[t];
				if (c > 0) {
					work[t] -= (float) (p.frequencyPenalty() * c + p.presencePenalty());
				}
			}
		}
		for (int i = 0; i < nt; i++) {
			counts[touched[i]] = 0;
		}
	}

	private void applyMask(long[] allowed) {
		int any = 0;
		for (int w = 0; w < allowed.length; w++) {
			long bits = allowed[w];
			any |= bits != 0 ? 1 : 0;
			if (bits == -1L) {
				continue; // a word of allowed tokens: the common case inside a JSON string
			}
			int base = w << 6;
			int end = Math.min(vocab, base + 64);
			for (int i = base; i < end; i++) {
				if ((bits & (1L << i)) == 0) {
					work[i] = Float.NEGATIVE_INFINITY;
				}
			}
		}
		if (any == 0) {
			throw new IllegalStateException("no token of the vocabulary can continue the constrained output");
		}
	}

	private void penalise(int t, float r) {
		work[t] = work[t] > 0 ? work[t] / r : work[t] * r;
	}

	/** @param max the largest entry of {@link #work} */
	private int draw(SamplingParams p, SplittableRandom rng, float max) {
		float invT = (float) (1.0 / p.temperature());
		double sum = HostMath.expSum(work, 0, probs, vocab, max, invT);
		float inv = (float) (1 / sum);
		for (int i = 0; i < vocab; i++) {
			probs[i] *= inv;
		}
		int k = p.topK() > 0 ? Math.min(p.topK(), vocab) : vocab;
		if (k == vocab && p.topP() >= 1 && p.minP() <= 0) {
			return drawFrom(rng, vocab);
		}
		double keptMass = truncate(k, p.topP(), p.minP());
		// one pass in vocabulary order over the kept tokens
		double u = rng.nextDouble() * keptMass;
		int last = -1;
		for (int i = 0; i < vocab; i++) {
			if (keeps(i)) {
				last = i;
				u -= probs[i];
				if (u <= 0) {
					return i;
				}
			}
		}
		return last;
	}

	/** For tests: which tokens {@link #truncate} keeps of these probabilities. */
	boolean[] keptOf(float[] probabilities, int k, double topP, double minP) {
		System.arraycopy(probabilities, 0, probs, 0, vocab);
		truncate(k, topP, minP);
		boolean[] out = new boolean[vocab];
		for (int i = 0; i < vocab; i++) {
			out[i] = keeps(i);
		}
		return out;
	}

	private static int bucket(float probability) {
		return Float.floatToRawIntBits(probability) >>> BUCKET_SHIFT;
	}

	/** Whether {@link #truncate} kept token {@code i}: its bucket is above the one the walk stopped in, or it was chosen there. */
	boolean keeps(int i) {
		return bucket(probs[i]) > stopBucket || chosen[i];
	}

	/**
	 * Chooses the tokens that top-k, top-p and min-p keep of {@link #probs}, as a walk over the tokens in
	 * descending probability would: the first always, then each while fewer than k are kept, the mass kept
	 * before it is below top-p, and it is at least min-p times the top probability and not masked out (0).
	 * Sorting the vocabulary instead cost milliseconds a token when a flat distribution put tens of thousands
	 * of tokens in the running. Here tokens are counted in buckets by the high bits of their probability (a
	 * positive float's bits order like its value), whole buckets are kept from the top while all of a
	 * bucket passes, and only the bucket where that stops is sorted and walked token by token.
	 * {@link #keeps} answers afterwards.
	 * @return the kept tokens' probability mass
	 */
	double truncate(int k, double topP, double minP) {
		Arrays.fill(bucketCount, 0);
		Arrays.fill(bucketMass, 0);
		float top = 0;
		for (int i = 0; i < vocab; i++) {
			float pr = probs[i];
			int b = bucket(pr);
			bucketCount[b]++;
			bucketMass[b] += pr;
			top = Math.max(top, pr);
			chosen[i] = false;
		}
		float minProb = (float) (minP * top);
		int kept = 0;
		double cum = 0;
		int b = bucketCount.length - 1;
		for (; b > 0; b--) { // bucket 0 (probability 0: masked; and denormals) is never taken whole
			if (bucketCount[b] == 0) {
				continue;
			}
			float floor = Float.intBitsToFloat(b << BUCKET_SHIFT);
			if (kept + bucketCount[b] >= k || cum + bucketMass[b] >= topP || floor < minProb) {
				break;
			}
			kept += bucketCount[b];
			cum += bucketMass[b];
		}
		stopBucket = b;
		int n = 0;
		for (int i = 0; i < vocab; i++) {
			float pr = probs[i];
			if (bucket(pr) == b && (pr > 0 || kept == 0)) {
				if (n == cand.length) {
					cand = Arrays.copyOf(cand, n * 2);
				}
				// probabilities are non-negative, so their float bits sort like the values
				cand[n++] = ((long) Float.floatToRawIntBits(pr) << 32) | i;
			}
		}
		Arrays.sort(cand, 0, n);
		for (int j = n - 1; j >= 0; j--) { // cand ascending: walk from the top
			float pr = Float.intBitsToFloat((int) (cand[j] >>> 32));
			if (kept > 0 && (kept >= k || cum >= topP || pr < minProb || pr <= 0)) {
				break;
			}
			chosen[(int) cand[j]] = true;
			kept++;
			cum += pr;
		}
		return cum;
	}

	private int drawFrom(SplittableRandom rng, int n) {
		double u = rng.nextDouble();
		for (int i = 0; i < n; i++) {
			u -= probs[i];
			if (u <= 0) {
				return i;
			}
		}
		return argmax(probs);
	}

	/** {@code token}'s logprob in the row at {@code offset}, and the row's top {@code k}, into {@code lp}. */
	void logprobs(float[] logits, int offset, int token, int k, Logprobs lp) {
		float max = Float.NEGATIVE_INFINITY;
		for (int i = 0; i < vocab; i++) {
			max = Math.max(max, logits[offset + i]);
		}
		double sum = HostMath.expSum(logits, offset, null, vocab, max, 1f);
		float mine = logits[offset + token];
		int above = 0;
		for (int i = 0; i < vocab; i++) {
			above += logits[offset + i] > mine ? 1 : 0;
		}
		float logZ = (float) (max + Math.log(sum));
		lp.tokenLogprob = mine - logZ;
		lp.tokenRank = above + 1;
		if (lp.topIds.length != k) {
			lp.topIds = new int[k];
			lp.topLogprobs = new float[k];
		}
		// top-k by repeated insertion into a small sorted array (k <= 20); k = 0 asks for none
		int filled = 0;
		for (int i = 0; i < vocab && k > 0; i++) {
			float v = logits[offset + i];
			if (filled < k || v > logits[offset + lp.topIds[filled - 1]]) {
				int j = filled < k ? filled++ : k - 1;
				while (j > 0 && logits[offset + lp.topIds[j - 1]] < v) {
					lp.topIds[j] = lp.topIds[j - 1];
					j--;
				}
				lp.topIds[j] = i;
			}
		}
		for (int j = 0; j < k; j++) {
			lp.topLogprobs[j] = logits[offset + lp.topIds[j]] - logZ;
		}
	}

	static int argmax(float[] a) {
		int best = 0;
		for (int i = 1; i < a.length; i++) {
			if (a[i] > a[best]) {
				best = i;
			}
		}
		return best;
	}
}
