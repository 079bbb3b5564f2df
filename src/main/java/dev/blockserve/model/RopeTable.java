package dev.blockserve.model;

/**
 * The rotary embedding's cos/sin table, [maxPos, headDim]: for each position the cos of the
 * headDim/2 frequencies, then their sin. Computed once in double precision (as the reference does)
 * and applied by the backend's rope op; rope_scaling variants only change the frequencies.
 * Stateless: any thread.
 */
final class RopeTable {

	private RopeTable() {
	}

	static double[] inverseFrequencies(ModelConfig c) {
		int half = c.headDim() / 2;
		double[] inv = new double[half];
		for (int i = 0; i < half; i++) {
			inv[i] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim());
		}
		ModelConfig.RopeScaling s = c.ropeScaling();
		if (s == null) {
			return inv;
		}
		if (s.type().equals("linear")) {
			for (int i = 0; i < half; i++) {
				inv[i] /= s.factor();
			}
			return inv;
		}
		// llama3: long wavelengths slowed by factor, short ones kept, a smooth blend between.
		double lowWavelen = s.originalMaxPositionEmbeddings() / s.lowFreqFactor();
		double highWavelen = s.originalMaxPositionEmbeddings() / s.highFreqFactor();
		for (int i = 0; i < half; i++) {
			double wavelen = 2 * Math.PI / inv[i];
			if (wavelen > lowWavelen) {
				inv[i] /= s.factor();
			}
			else if (wavelen >= highWavelen) {
				double smooth = (s.originalMaxPositionEmbeddings() / wavelen - s.lowFreqFactor())
						/ (s.highFreqFactor() - s.lowFreqFactor());
				inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
			}
		}
		return inv;
	}

	static float[] build(ModelConfig c, int maxPos) {
		int hd = c.headDim();
		int half = hd / 2;
		double[] inv = inverseFrequencies(c);
		float[] t = new float[maxPos * hd];
		for (int p = 0; p < maxPos; p++) {
			for (int i = 0; i < half; i++) {
				double a = p * inv[i];
				t[p * hd + i] = (float) Math.cos(a);
				t[p * hd + half + i] = (float) Math.sin(a);
			}
		}
		return t;
	}
}
