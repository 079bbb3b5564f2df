package dev.blockserve.backend;

/**
 * A handle on backend memory (host memory for the CPU backend, device memory for CUDA): an address,
 * an element count and an element type. Java never touches the bytes directly; it passes handles to
 * the backend's ops, which check sizes against {@link #elements()} before any native code runs.
 * A buffer either owns its memory (freed by {@link #close()}) or is a view of memory owned elsewhere
 * (a tensor inside a memory-mapped weights file).
 * Used by the engine thread; closing is idempotent.
 */
public final class NativeBuffer implements AutoCloseable {

	private final Backend owner;

	private final DType type;

	private final long elements;

	private final boolean owned;

	private long address;

	/** A second form of the same matrix for one row of x (CpuBackend's 12-bit BF16), closed with this one. */
	private NativeBuffer packed;

	NativeBuffer(Backend owner, long address, long elements, DType type, boolean owned) {
		this.owner = owner;
		this.address = address;
		this.elements = elements;
		this.type = type;
		this.owned = owned;
	}

	/** The address, checked to be live and of the given backend. */
	long address(Backend backend) {
		if (address == 0) {
			throw new IllegalStateException("buffer is closed");
		}
		if (backend != owner) {
			throw new IllegalArgumentException("buffer belongs to backend " + owner.name() + ", not " + backend.name());
		}
		return address;
	}

	public long elements() {
		return elements;
	}

	public DType type() {
		return type;
	}

	public long bytes() {
		return elements * type.bytes();
	}

	public boolean isClosed() {
		return address == 0;
	}

	/** The packed form of this matrix, or null. */
	NativeBuffer packed() {
		return packed;
	}

	void packed(NativeBuffer form) {
		this.packed = form;
	}

	/** Bytes of the packed form held beside this matrix (0 without one). */
	public long packedBytes() {
		return packed == null ? 0 : packed.bytes();
	}

	@Override
	public void close() {
		if (packed != null) {
			packed.close();
			packed = null;
		}
		if (address != 0) {
			long a = address;
			address = 0;
			if (owned) {
				owner.free(a);
			}
		}
	}

	@Override
	public String toString() {
		return "NativeBuffer[" + type + " x " + elements + (owned ? "" : ", view") + (address == 0 ? ", closed" : "") + "]";
	}
}
