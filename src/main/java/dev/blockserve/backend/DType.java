package dev.blockserve.backend;

/** Element types of tensors on disk and in backend memory. Immutable. */
public enum DType {

	F32(4), F16(2), BF16(2), I32(4);

	private final int bytes;

	DType(int bytes) {
		this.bytes = bytes;
	}

	public int bytes() {
		return bytes;
	}
}
