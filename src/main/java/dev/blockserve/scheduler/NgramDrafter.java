package dev.blockserve.scheduler;

/**
 * Prompt-lookup drafting: finds the most recent earlier occurrence of a sequence's last n tokens (n from
 * the longest lookup down to the shortest) and proposes the tokens that followed it. The copy runs forward
 * one token at a time, so a continuation that reaches the sequence's end goes on with the drafts just
 * written: a loop of period p is drafted whole however short p is. Scans the tokens in place and allocates
 * nothing. Owned by the engine thread (through the scheduler).
 */
public final class NgramDrafter {

	private final int lookupMin;

	private final int lookupMax;

	public NgramDrafter(SpeculativeConfig config) {
		this.lookupMin = config.lookupMin();
		this.lookupMax = config.lookupMax();
	}

	/**
	 * Writes up to {@code max} drafts after {@code tokens[0..numTokens)}, at {@code tokens[numTokens..]}
	 * (which must have room for them), and returns how many: 0 when no n-gram recurs.
	 */
	public int draft(int[] tokens, int numTokens, int max) {
		if (max <= 0) {
			return 0;
		}
		for (int n = Math.min(lookupMax, numTokens - 1); n >= lookupMin; n--) {
			int match = lastOccurrence(tokens, numTokens, n);
			if (match >= 0) {
				int from = match + n;
				for (int j = 0; j < max; j++) {
					tokens[numTokens + j] = tokens[from + j];
				}
				return max;
			}
		}
		return 0;
	}

	/** Start of the latest occurrence of the last {@code n} tokens that ends before them, or -1. */
	private static int lastOccurrence(int[] tokens, int numTokens, int n) {
		int suffix = numTokens - n;
		int lastToken = tokens[numTokens - 1];
		for (int end = numTokens - 2; end >= n - 1; end--) { // end: the candidate's last index
			if (tokens[end] != lastToken) {
				continue;
			}
			int start = end - n + 1;
			int k = n - 2;
			while (k >= 0 && tokens[start + k] == tokens[suffix + k]) {
				k--;
			}
			if (k < 0) {
				return start;
			}
		}
		return -1;
	}
}
