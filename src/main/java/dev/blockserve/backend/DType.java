package dev.blockserve.backend;

/** Element types of tensors on disk and in backend memory. Immutable. */
public enum DType {

	F32(4, "float32"), F16(2, "float16"), BF16(2, "bfloat16"), I32(4, "int32");

	private final int bytes;

	private final String torchName;

	DType(int bytes, String torchName) {
		this.bytes = bytes;
		this.torchName = torchName;
	}

	public int bytes() {
		return bytes;
	}

	/** The name torch (and vLLM's metrics) give the type: "float32", "float16", "bfloat16", "int32". */
	public String torchName() {
		return torchName;
	}
}
