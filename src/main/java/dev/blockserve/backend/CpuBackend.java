package dev.blockserve.backend;

import static dev.blockserve.backend.Backend.need;

/**
 * The CPU implementation of {@link Backend}: host memory, kernels in libblockserve_cpu (C++17, OpenMP,
 * vectorised for the build machine). F32 weights are used in place from the memory-mapped file, so
 * loading costs no copy and the page cache holds one copy of them. Ops run on the engine thread, which
 * the kernels' OpenMP team joins.
 */
public final class CpuBackend extends NativeBackend {

	/** @param threads kernel threads; 0 for one per available processor */
	public CpuBackend(int threads) {
		super(new CpuKernels());
		if (threads < 0) {
			throw new IllegalArgumentException("threads must be >= 0, got " + threads);
		}
		CpuKernels.setThreads(threads);
	}

	@Override
	public String name() {
		return "cpu";
	}

	@Override
	public Kind kind() {
		return Kind.CPU;
	}

	/** Host memory is not the backend's to size: the KV cache takes the configured budget. */
	@Override
	public long freeDeviceMemory() {
		return -1;
	}

	public int threads() {
		return CpuKernels.threads();
	}

	/** An aligned F32 weight is a view of the mapping itself; anything else is widened into a copy. */
	@Override
	public NativeBuffer loadWeight(long hostAddress, DType type, long elements) {
		if (type == DType.F32 && (hostAddress & 3) == 0) {
			return new NativeBuffer(this, hostAddress, elements, DType.F32, false);
		}
		return super.loadWeight(hostAddress, type, elements);
	}

	/** Reads {@code floats} values at all threads' speed; returns a checksum (bandwidth probe). */
	public double streamRead(NativeBuffer b, long floats) {
		need(b, floats, "stream_read");
		return CpuKernels.streamRead(b.address(this), floats);
	}

	@Override
	public void close() {
		// Buffers are closed by their owners; nothing global to release.
	}
}
