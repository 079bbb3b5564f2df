package dev.blockserve.backend;

import java.util.Random;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The library's exp pass against {@code Math.exp}: every element and the sum, over the range logits take. */
class HostMathTest {

	@Test
	void theLibrarysPassServesOnThisPlatform() {
		assertThat(HostMath.isNative()).as("libblockserve_cpu's exp_sum loaded").isTrue();
	}

	@Test
	void matchesMathExpElementByElementAndInTheSum() {
		Random r = new Random(3);
		for (int n : new int[] { 1, 7, 8, 17, 100, 49152, 151936 }) {
			int offset = r.nextInt(5);
			float[] in = new float[offset + n];
			for (int i = 0; i < in.length; i++) {
				in[i] = (float) (r.nextGaussian() * 8);
			}
			in[offset] = Float.NEGATIVE_INFINITY; // a masked token
			if (n > 3) {
				in[offset + 3] = -200f; // far below the shift: underflows to 0
			}
			float shift = 5f, scale = 1.3f;
			float[] out = new float[n];
			double sum = HostMath.expSum(in, offset, out, n, shift, scale);
			double want = 0;
			for (int i = 0; i < n; i++) {
				double e = Math.exp((double) ((in[offset + i] - shift) * scale));
				want += e;
				assertThat((double) out[i]).as("element %d of %d", i, n).isCloseTo(e, org.assertj.core.data.Offset.offset(e * 1e-6 + 1e-37));
			}
			assertThat(out[0]).isZero();
			assertThat(sum).as("sum of %d", n).isCloseTo(want, org.assertj.core.data.Offset.offset(want * 1e-6));
			assertThat(HostMath.expSum(in, offset, null, n, shift, scale)).isEqualTo(sum);
		}
	}

	@Test
	void rejectsRangesOutsideTheArrays() {
		float[] a = new float[8];
		assertThatThrownBy(() -> HostMath.expSum(a, 4, null, 5, 0f, 1f)).isInstanceOf(IndexOutOfBoundsException.class);
		assertThatThrownBy(() -> HostMath.expSum(a, 0, new float[4], 5, 0f, 1f)).isInstanceOf(IndexOutOfBoundsException.class);
	}

	@Test
	void normalizeL2ScalesToUnitLengthAndRefusesNonFiniteValues() {
		float[] v = { 3f, 4f, 12f, 99f };
		assertThat(HostMath.normalizeL2(v, 3)).isTrue();
		assertThat(v).containsExactly(new float[] { 3f / 13, 4f / 13, 12f / 13, 99f }, org.assertj.core.data.Offset.offset(1e-7f));
		float[] zero = new float[5];
		assertThat(HostMath.normalizeL2(zero, 5)).isTrue();
		assertThat(zero).containsOnly(0f);
		float[] bad = { 1f, Float.NaN };
		assertThat(HostMath.normalizeL2(bad, 2)).isFalse();
		assertThat(bad[0]).isEqualTo(1f);
		float[] huge = { Float.MAX_VALUE, Float.MAX_VALUE }; // squares overflow float, not the double sum
		assertThat(HostMath.normalizeL2(huge, 2)).isTrue();
		assertThat(huge).containsOnly((float) Math.sqrt(0.5));
	}
}
