package dev.blockserve.backend;

import java.util.Objects;

/**
 * Vectorised math on host arrays for the engine's per-token work: the sampler's softmax and logprobs
 * pass {@code exp} over a whole vocabulary row per sequence per step. The CPU library's vector exp (about
 * one float ulp, as the attention softmax uses) where it loads; the same in plain Java where it does not
 * (a platform without the library). Measured on a 2-core EPYC (AVX2), a 49,152-float row: {@code Math.exp}
 * in a loop about 340 us, the library's pass about 30 us.
 * Thread: any; calls from several threads at once are safe (the pass keeps no state).
 */
public final class HostMath {

	private static final boolean NATIVE = probe();

	private HostMath() {
	}

	private static boolean probe() {
		try {
			if (CpuKernels.level().isEmpty()) {
				CpuKernels.select("auto"); // no CPU backend yet (a GPU server, a tool): the best level this CPU runs
			}
			return !Double.isNaN(CpuKernels.expSum(new float[] { 0f }, 0, null, 0, 1, 0f, 1f));
		}
		catch (LinkageError | RuntimeException e) {
			return false; // no library for this platform: the Java loop below
		}
	}

	/**
	 * Scales {@code v[0..n)} to unit L2 length, summing in double (a zero vector stays zero); false, and
	 * {@code v} unchanged, when a value is not finite. Plain Java: it runs once per embedding, not per token.
	 */
	public static boolean normalizeL2(float[] v, int n) {
		double sum = 0;
		for (int i = 0; i < n; i++) {
			sum += (double) v[i] * v[i];
		}
		if (!Double.isFinite(sum)) {
			return false;
		}
		if (sum > 0) {
			double norm = Math.sqrt(sum); // divided in double: 1/norm of a huge vector is a float subnormal
			for (int i = 0; i < n; i++) {
				v[i] = (float) (v[i] / norm);
			}
		}
		return true;
	}

	/** Whether the library's pass serves {@link #expSum} (else the Java loop). */
	public static boolean isNative() {
		return NATIVE;
	}

	/**
	 * {@code out[i] = exp((in[inOffset + i] - shift) * scale)} for {@code i < n} when {@code out} is not
	 * null, and the sum of those values (in double). {@code -inf} entries give 0.
	 */
	public static double expSum(float[] in, int inOffset, float[] out, int n, float shift, float scale) {
		Objects.checkFromIndexSize(inOffset, n, in.length);
		if (out != null) {
			Objects.checkFromIndexSize(0, n, out.length);
		}
		if (NATIVE) {
			return CpuKernels.expSum(in, inOffset, out, 0, n, shift, scale);
		}
		double sum = 0;
		for (int i = 0; i < n; i++) {
			float e = (float) Math.exp((in[inOffset + i] - shift) * scale);
			if (out != null) {
				out[i] = e;
			}
			sum += e;
		}
		return sum;
	}
}
