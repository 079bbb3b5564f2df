package dev.blockserve.backend;

import java.util.Locale;

/**
 * Where the CPU reads weight files from ({@code blockserve.weight-pages}). Immutable.
 * <ul>
 * <li>{@link #AUTO}: the file's own mapping when at least 90% of it lies in 2 MiB pages once faulted in,
 * else (files of {@value MappedFile#AUTO_MIN_BYTES} bytes and more, where transparent huge pages are on
 * and memory allows) a copy in anonymous huge pages;
 * <li>{@link #HUGE}: always the copy in huge pages (where transparent huge pages are on);
 * <li>{@link #MAPPED}: always the file's mapping as the page cache holds it (shared with other processes
 * mapping the same file; pages fault in on first use).
 * </ul>
 * Why: decoding a token streams every weight once, and through 4 KiB pages each 4 KiB costs a TLB miss and
 * a page walk (two levels of them under a hypervisor); with 2 MiB pages a plain read of the BF16
 * SmolLM2-shaped weights ran 25-60% faster here (docs/benchmarks.md, "Huge pages"). Whether a file's page
 * cache comes in 2 MiB folios depends on the kernel, the file system and the file's history, so
 * {@link #AUTO} looks before it copies. The CUDA backend uploads the weights and always maps.
 */
public enum WeightPages {

	AUTO, HUGE, MAPPED;

	/** Parses "auto", "huge" or "mapped" (any case). */
	public static WeightPages parse(String s) {
		String v = s == null ? "auto" : s.trim().toLowerCase(Locale.ROOT);
		return switch (v) {
			case "auto" -> AUTO;
			case "huge" -> HUGE;
			case "mapped" -> MAPPED;
			default -> throw new IllegalArgumentException(
					"blockserve.weight-pages must be auto, huge or mapped, got '" + s + "'");
		};
	}

	@Override
	public String toString() {
		return name().toLowerCase(Locale.ROOT);
	}
}
