package dev.blockserve.engine;

/**
 * The CPU KV cache's default budget, sized to the model: room for two sequences of the model's full
 * context (so a long request never has the pool to itself), at least {@link #MIN_TOKENS} tokens for many
 * short ones, and never more than the machine can spare: a quarter of its memory, and what is left after
 * the weights, the largest heap the JVM may take and {@link #RESERVE} for everything else. A model whose
 * context does not fit then serves a shorter one, as {@link ModelRuntime#fitContextToCache} says at
 * start-up. An explicit {@code blockserve.kv-cache.memory} replaces all of this.
 * Thread: any (a pure function).
 */
public final class KvCacheSizing {

	/** Tokens the default always offers room for when the machine allows: 64 sequences of 256. */
	public static final long MIN_TOKENS = 16_384;

	/** Memory left for the JVM's own use beyond the heap (metaspace, code, threads) and the OS. */
	public static final long RESERVE = 512L << 20;

	/** Never less than this, even on a machine that seems to have nothing to spare. */
	public static final long FLOOR = 64L << 20;

	private KvCacheSizing() {
	}

	/** A budget and how it was chosen, for the start-up log. */
	public record Budget(long bytes, String why) {
	}

	/**
	 * @param bytesPerToken KV bytes of one token over all layers
	 * @param context the model's context length (tokens)
	 * @param weightBytes bytes of the weights (mapped or copied)
	 * @param totalMemory the machine's (or container's) memory
	 * @param maxHeap the JVM's largest heap
	 */
	public static Budget auto(long bytesPerToken, int context, long weightBytes, long totalMemory, long maxHeap) {
		long wanted = Math.max(2L * context, MIN_TOKENS) * bytesPerToken;
		long spare = Math.min(totalMemory / 4, totalMemory - weightBytes - maxHeap - RESERVE);
		long cap = Math.max(FLOOR, spare);
		if (wanted <= cap) {
			return new Budget(wanted, String.format("%s for %,d tokens (twice the context of %,d, at least %,d) at %s a token",
					mib(wanted), wanted / bytesPerToken, context, MIN_TOKENS, kib(bytesPerToken)));
		}
		return new Budget(cap, String.format("%s, what this machine spares (a quarter of its %s, and after %s of weights, "
				+ "a %s heap and %s reserved), of the %s that %,d tokens would take", mib(cap), mib(totalMemory),
				mib(weightBytes), mib(maxHeap), mib(RESERVE), mib(wanted), wanted / bytesPerToken));
	}

	private static String mib(long bytes) {
		return String.format("%,d MiB", bytes >> 20);
	}

	private static String kib(long bytes) {
		return String.format("%,d KiB", bytes >> 10);
	}
}
