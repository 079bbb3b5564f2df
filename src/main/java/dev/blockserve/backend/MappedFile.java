package dev.blockserve.backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A whole file mapped read-only into memory (mmap), with no size limit (unlike MappedByteBuffer's
 * 2 GiB). Weight files are read through this: pages come from the page cache on first touch and are
 * shared with every other process mapping the same file.
 * Mapped at load time; read by the engine thread's ops; closed with the model.
 */
public final class MappedFile implements AutoCloseable {

	private final Path path;

	private final long length;

	private long address;

	private MappedFile(Path path, long address, long length) {
		this.path = path;
		this.address = address;
		this.length = length;
	}

	public static MappedFile map(Path path) throws IOException {
		long length = Files.size(path);
		if (length == 0) {
			throw new IOException(path + " is empty");
		}
		return new MappedFile(path, CpuKernels.mapFile(path.toAbsolutePath().toString(), length), length);
	}

	public Path path() {
		return path;
	}

	public long length() {
		return length;
	}

	/** Address of byte {@code offset}; the caller keeps this mapping open while it uses the address. */
	public long address(long offset) {
		if (address == 0) {
			throw new IllegalStateException(path + " is no longer mapped");
		}
		if (offset < 0 || offset > length) {
			throw new IndexOutOfBoundsException("offset " + offset + " outside " + path + " (" + length + " bytes)");
		}
		return address + offset;
	}

	@Override
	public void close() {
		if (address != 0) {
			CpuKernels.unmap(address, length);
			address = 0;
		}
	}
}
