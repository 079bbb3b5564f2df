package dev.blockserve.kvcache;

import java.nio.charset.StandardCharsets;

/**
 * Chained 64-bit hashes of full blocks: a block's hash covers its parent's hash and its own token ids,
 * so equal hashes mean equal prefixes up to collisions, which the pool rules out by also comparing
 * the tokens and parent hash of any block it matches. The chain starts from a root derived from an
 * extra key (model name, and later adapter or per-request cache salt), so different keys never share.
 * Stateless: any thread.
 */
public final class BlockHasher {

	private static final long P1 = 0x9E3779B185EBCA87L;

	private static final long P2 = 0xC2B2AE3D27D4EB4FL;

	private BlockHasher() {
	}

	/** The chain's root for an extra key. */
	public static long root(String extraKey) {
		long h = 0x165667B19E3779F9L;
		for (byte b : extraKey.getBytes(StandardCharsets.UTF_8)) {
			h = mix(h ^ (b & 0xff));
		}
		return mix(h ^ extraKey.length());
	}

	/**
	 * The chain's root for a cache salt under {@code root} (an extra key's): no chain of another salt, or of
	 * none, can meet it (the pool also compares parents when it matches).
	 */
	public static long salted(long root, String salt) {
		long h = root;
		for (byte b : salt.getBytes(StandardCharsets.UTF_8)) {
			h = mix(h ^ (b & 0xff) ^ 0x5A17_0000_0000_0000L);
		}
		return mix(h ^ ((long) salt.length() << 32) ^ 0x5A17L);
	}

	/** Hash of a block holding {@code tokens[from..from+len)} whose parent block hashed to {@code parent}. */
	public static long hash(long parent, int[] tokens, int from, int len) {
		long h = parent * P1 + len;
		for (int i = 0; i < len; i++) {
			h = Long.rotateLeft(h ^ (tokens[from + i] * P2), 29) * P1;
		}
		return mix(h);
	}

	private static long mix(long z) {
		z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
		z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
		return z ^ (z >>> 31);
	}
}
