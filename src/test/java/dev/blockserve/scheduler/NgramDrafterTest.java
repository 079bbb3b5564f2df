package dev.blockserve.scheduler;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.support.Property;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Prompt lookup against a plain rule written the obvious way: for n from the longest lookup down, the
 * latest earlier window equal to the last n tokens; the drafts continue the sequence from the token after
 * that window, reading the drafts already written when they run past the end (a loop continues as a loop).
 */
class NgramDrafterTest {

	/** The reference: builds the extended sequence token by token in a list. */
	static int[] expected(int[] tokens, int numTokens, int min, int maxN, int max) {
		for (int n = Math.min(maxN, numTokens - 1); n >= min; n--) {
			int[] suffix = Arrays.copyOfRange(tokens, numTokens - n, numTokens);
			for (int start = numTokens - n - 1; start >= 0; start--) {
				if (Arrays.equals(Arrays.copyOfRange(tokens, start, start + n), suffix)) {
					List<Integer> ext = new ArrayList<>();
					for (int i = 0; i < numTokens; i++) {
						ext.add(tokens[i]);
					}
					for (int j = 0; j < max; j++) {
						ext.add(ext.get(start + n + j));
					}
					return ext.subList(numTokens, numTokens + max).stream().mapToInt(Integer::intValue).toArray();
				}
			}
		}
		return new int[0];
	}

	record Case(int[] tokens, int min, int maxN, int max) {
		@Override
		public String toString() {
			return Arrays.toString(tokens) + " lookup " + min + ".." + maxN + ", " + max + " drafts";
		}
	}

	@Test
	void draftsWhatTheReferenceRuleDrafts() {
		Property.forAll("prompt lookup", 3000, 20261129L, r -> {
			int len = 1 + r.nextInt(40);
			int alphabet = 1 + r.nextInt(5); // small alphabets make n-grams recur
			int[] t = new int[len];
			for (int i = 0; i < len; i++) {
				t[i] = r.nextInt(alphabet);
			}
			int min = 1 + r.nextInt(3);
			return List.of(new Case(t, min, min + r.nextInt(3), r.nextInt(9)));
		}, ops -> {
			Case c = ops.get(0);
			int[] buf = Arrays.copyOf(c.tokens(), c.tokens().length + c.max());
			int n = new NgramDrafter(new SpeculativeConfig(8, c.min(), c.maxN(), 1)).draft(buf, c.tokens().length, c.max());
			int[] want = expected(c.tokens(), c.tokens().length, c.min(), c.maxN(), c.max());
			assertThat(Arrays.copyOfRange(buf, c.tokens().length, c.tokens().length + n)).as("drafts").containsExactly(want);
			assertThat(Arrays.copyOf(buf, c.tokens().length)).as("the sequence itself is untouched").containsExactly(c.tokens());
		});
	}

	@Test
	void aShortLoopIsDraftedWholeAndAPrefixWithoutRepeatsDraftsNothing() {
		NgramDrafter d = new NgramDrafter(new SpeculativeConfig(6, 2, 3, 1));
		int[] loop = Arrays.copyOf(new int[] { 7, 1, 2, 1, 2, 1 }, 12);
		assertThat(d.draft(loop, 6, 6)).isEqualTo(6);
		assertThat(Arrays.copyOfRange(loop, 6, 12)).containsExactly(2, 1, 2, 1, 2, 1);
		int[] fresh = Arrays.copyOf(new int[] { 1, 2, 3, 4, 5 }, 10);
		assertThat(d.draft(fresh, 5, 5)).isZero();
		assertThat(d.draft(loop, 6, 0)).isZero();
	}

	@Test
	void theLongestRecurringNgramWinsOverAMoreRecentShorterOne() {
		// "5 6" recurs at index 0 (followed by 9) and "6" alone more recently (followed by 4)
		int[] t = Arrays.copyOf(new int[] { 5, 6, 9, 6, 4, 5, 6 }, 9);
		new NgramDrafter(new SpeculativeConfig(2, 1, 2, 1)).draft(t, 7, 2);
		assertThat(Arrays.copyOfRange(t, 7, 9)).containsExactly(9, 6);
	}
}
