package dev.blockserve.backend;

import java.util.Locale;

/**
 * How weight matrices are held ({@code blockserve.dtype}). Immutable.
 * <ul>
 * <li>{@link #AUTO}: as the checkpoint ships them (BF16 stays BF16, read in place from the mapped file);
 * <li>{@link #BF16}: BF16, rounding F32/F16 checkpoints to nearest even at load (half the memory);
 * <li>{@link #F32}: widened to F32 at load (twice the memory of a BF16 checkpoint; the former default).
 * </ul>
 * Either way the kernels widen each weight to F32 in registers and accumulate in F32, so a BF16 model
 * computes exactly what an F32 run on its BF16 values computes, up to summation order. Norm weights
 * and biases (vectors) are always F32. Backends that cannot multiply a type take F32 instead.
 */
public enum WeightType {

	AUTO, BF16, F32;

	/** Parses "auto", "bf16"/"bfloat16", "f32"/"float32" (any case). */
	public static WeightType parse(String s) {
		String v = s == null ? "auto" : s.trim().toLowerCase(Locale.ROOT);
		return switch (v) {
			case "auto" -> AUTO;
			case "bf16", "bfloat16" -> BF16;
			case "f32", "float32", "fp32" -> F32;
			default -> throw new IllegalArgumentException("blockserve.dtype must be auto, bf16 or f32, got '" + s + "'");
		};
	}

	@Override
	public String toString() {
		return name().toLowerCase(Locale.ROOT);
	}
}
