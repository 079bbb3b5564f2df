package dev.blockserve.backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A whole file mapped read-only into memory (mmap), with no size limit (unlike MappedByteBuffer's
 * 2 GiB). Weight files are read through this: pages come from the page cache and are shared with every
 * other process mapping the same file, or (as {@link WeightPages} says) the bytes are moved once into
 * anonymous memory in 2 MiB pages, which the CPU streams faster.
 * Mapped at load time; read by the engine thread's ops; closed with the model.
 */
public final class MappedFile implements AutoCloseable {

	/** {@link WeightPages#AUTO} copies files of this size and more only (smaller ones sit mostly in the caches). */
	public static final long AUTO_MIN_BYTES = 64L << 20;

	/** {@link WeightPages#AUTO} keeps a mapping with at least this fraction of it in huge pages. */
	static final double AUTO_KEEP_FRACTION = 0.9;

	private static final long HUGE_PAGE = 2L << 20;

	private final Path path;

	private final long length;

	/** Bytes to unmap at close: the file's length, or the copy's length rounded up to 2 MiB. */
	private final long mappedLength;

	private final String placement;

	private long address;

	private MappedFile(Path path, long address, long length, long mappedLength, String placement) {
		this.path = path;
		this.address = address;
		this.length = length;
		this.mappedLength = mappedLength;
		this.placement = placement;
	}

	/** Maps the file as the page cache holds it ({@link WeightPages#MAPPED}). */
	public static MappedFile map(Path path) throws IOException {
		return map(path, WeightPages.MAPPED);
	}

	/** Maps the file, or moves it into huge pages, as {@code pages} says. */
	public static MappedFile map(Path path, WeightPages pages) throws IOException {
		long length = Files.size(path);
		if (length == 0) {
			throw new IOException(path + " is empty");
		}
		String file = path.toAbsolutePath().toString();
		long a = CpuKernels.mapFile(file, length);
		if (pages == WeightPages.MAPPED) {
			return new MappedFile(path, a, length, length, "mapped");
		}
		try {
			boolean thp = HugePages.available();
			if (thp) {
				CpuKernels.adviseHugePages(a, length); // uncached pages then fault in as 2 MiB folios where the FS can
			}
			CpuKernels.populate(a, length);
			long huge = HugePages.hugeBytes(a, length);
			String mapped = "mapped, " + percent(huge, length) + " in 2 MiB pages";
			if (thp && pages == WeightPages.AUTO && huge >= AUTO_KEEP_FRACTION * length) {
				return new MappedFile(path, a, length, length, mapped);
			}
			String skip = !thp ? "transparent huge pages are off" : pages == WeightPages.AUTO ? autoSkip(path, length) : null;
			if (skip != null) {
				return new MappedFile(path, a, length, length, mapped + " (not copied: " + skip + ")");
			}
			long copy;
			try {
				copy = CpuKernels.copyToHugePages(a, length);
			}
			catch (BackendException e) { // no memory for the copy: the mapping still holds every byte
				if (pages == WeightPages.HUGE) {
					throw e;
				}
				return new MappedFile(path, a, length, length, mapped + " (not copied: " + e.getMessage() + ")");
			}
			CpuKernels.unmap(a, length);
			a = 0;
			CpuKernels.dropPageCache(file);
			long rounded = (length + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
			return new MappedFile(path, copy, length, rounded,
					"copied into memory, " + percent(HugePages.hugeBytes(copy, rounded), length)
							+ " in 2 MiB pages (the file's mapping had " + percent(huge, length) + ")");
		}
		catch (RuntimeException e) {
			if (a != 0) {
				CpuKernels.unmap(a, length);
			}
			throw e;
		}
	}

	/** Why {@link WeightPages#AUTO} keeps a mapping not in huge pages as it is; null to copy it. */
	private static String autoSkip(Path path, long length) {
		if (length < AUTO_MIN_BYTES) {
			return "smaller than " + (AUTO_MIN_BYTES >> 20) + " MiB";
		}
		if (inMemory(path)) {
			return "the file lives in memory (tmpfs), whose pages a copy could not release";
		}
		long available = HugePages.memAvailable();
		if (available >= 0 && available < length + (512L << 20)) {
			return "available memory (MemAvailable, or a cgroup's limit) is below its size + 512 MiB";
		}
		return null;
	}

	private static boolean inMemory(Path path) {
		try {
			String type = Files.getFileStore(path).type();
			return type.equals("tmpfs") || type.equals("ramfs");
		}
		catch (IOException | RuntimeException e) {
			return false;
		}
	}

	private static String percent(long part, long whole) {
		return part < 0 ? "an unknown share" : Math.round(100.0 * Math.min(part, whole) / whole) + "%";
	}

	/** How the bytes are held, for the start-up log: "mapped, 100% in 2 MiB pages", "copied into memory, ...". */
	public String placement() {
		return placement;
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
			CpuKernels.unmap(address, mappedLength);
			address = 0;
		}
	}
}
