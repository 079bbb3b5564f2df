package dev.blockserve.backend;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What Linux says about this process's huge pages: whether transparent huge pages can be had, how many
 * bytes of an address range are mapped by 2 MiB pages, memory available. Reads /proc and /sys at load
 * time only; -1 or false where they cannot be read (other systems). Stateless.
 */
public final class HugePages {

	private HugePages() {
	}

	/** Whether madvise(MADV_HUGEPAGE) can give huge pages: THP "always" or "madvise", not "never". */
	static boolean available(Path enabledFile) {
		try {
			String s = Files.readString(enabledFile);
			return s.contains("[always]") || s.contains("[madvise]");
		}
		catch (IOException | RuntimeException e) {
			return false;
		}
	}

	/** Whether this machine gives transparent huge pages on madvise (Linux with THP "always" or "madvise"). */
	public static boolean available() {
		return available(Path.of("/sys/kernel/mm/transparent_hugepage/enabled"));
	}

	/** Bytes of [address, address + length) mapped by huge pages now (this process's smaps); -1 if unknown. */
	static long hugeBytes(long address, long length) {
		try {
			return hugeBytes(Files.readAllLines(Path.of("/proc/self/smaps")), address, length);
		}
		catch (IOException | RuntimeException e) {
			return -1;
		}
	}

	/**
	 * Sums the huge-page fields (AnonHugePages, FilePmdMapped, ShmemPmdMapped) of the mappings that start
	 * inside [address, address + length), from smaps lines; -1 when no mapping starts inside the range.
	 */
	static long hugeBytes(List<String> smaps, long address, long length) {
		long end = address + length;
		boolean inside = false;
		boolean any = false;
		long kb = 0;
		for (String line : smaps) {
			int dash = line.indexOf('-');
			int space = line.indexOf(' ');
			if (dash > 0 && space > dash && isHex(line, 0, dash)) { // a mapping's header: "start-end perms ..."
				long from = Long.parseUnsignedLong(line, 0, dash, 16);
				inside = from >= address && from < end; // the last page may run past an unaligned length
				any |= inside;
			}
			else if (inside && (line.startsWith("AnonHugePages:") || line.startsWith("FilePmdMapped:")
					|| line.startsWith("ShmemPmdMapped:"))) {
				kb += Long.parseLong(line.substring(line.indexOf(':') + 1).replace("kB", "").trim());
			}
		}
		return any ? kb << 10 : -1;
	}

	/**
	 * Memory this process can still fill, in bytes: /proc/meminfo's MemAvailable, or less where a cgroup v2
	 * limit (a container's) leaves less: its memory.max minus memory.current plus the cgroup's page cache
	 * ("file" in memory.stat, which the kernel reclaims before it refuses). -1 if unknown.
	 */
	static long memAvailable() {
		long host = meminfoAvailable(Path.of("/proc/meminfo"));
		long cgroup = cgroupAvailable(Path.of("/sys/fs/cgroup"));
		return host < 0 ? cgroup : cgroup < 0 ? host : Math.min(host, cgroup);
	}

	static long meminfoAvailable(Path meminfo) {
		try {
			for (String line : Files.readAllLines(meminfo)) {
				if (line.startsWith("MemAvailable:")) {
					return Long.parseLong(line.substring(13).replace("kB", "").trim()) << 10;
				}
			}
			return -1;
		}
		catch (IOException | RuntimeException e) {
			return -1;
		}
	}

	/** A cgroup v2 directory's headroom; -1 without a limit ("max") or without cgroup v2 files. */
	static long cgroupAvailable(Path dir) {
		try {
			String max = Files.readString(dir.resolve("memory.max")).trim();
			if (max.equals("max")) {
				return -1;
			}
			long current = Long.parseLong(Files.readString(dir.resolve("memory.current")).trim());
			long file = 0;
			for (String line : Files.readAllLines(dir.resolve("memory.stat"))) {
				if (line.startsWith("file ")) {
					file = Long.parseLong(line.substring(5).trim());
				}
			}
			return Math.max(0, Long.parseLong(max) - current + file);
		}
		catch (IOException | RuntimeException e) {
			return -1;
		}
	}

	private static boolean isHex(String s, int from, int to) {
		for (int i = from; i < to; i++) {
			if (Character.digit(s.charAt(i), 16) < 0) {
				return false;
			}
		}
		return to > from;
	}
}
