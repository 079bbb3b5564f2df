package dev.blockserve.engine;

import java.nio.file.Files;
import java.nio.file.Path;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.WeightType;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.ModelLoadException;
import dev.blockserve.model.TextTokenizer;

/**
 * A served model with everything it needs at run time: backend, weights, tokenizer, stop tokens and
 * the KV cache memory. Closing it releases all native memory it holds. Built once at start-up; the
 * engine thread uses it from then on (the tokenizer is also used by request threads).
 */
public final class ModelRuntime implements AutoCloseable {

	private final String name;

	private final Path directory;

	private final Backend backend;

	private final LlamaModel model;

	private final TextTokenizer tokenizer;

	private final GenerationConfig generationConfig;

	private final KvCacheMemory cache;

	private String cacheSizing;

	/**
	 * @param numBlocks blocks of the KV cache; 0 to size it from {@code cacheBytes}
	 * @param cacheBytes the CPU budget; negative to size it to the model ({@link KvCacheSizing})
	 */
	public ModelRuntime(Path dir, Backend backend, int maxModelLen, int blockSize, int numBlocks, long cacheBytes) {
		this(dir, dir.toAbsolutePath().normalize().getFileName().toString(), backend, maxModelLen, blockSize, numBlocks,
				cacheBytes);
	}

	/** @param name the name clients use for this model (the "model" field of requests) */
	public ModelRuntime(Path dir, String name, Backend backend, int maxModelLen, int blockSize, int numBlocks,
			long cacheBytes) {
		this(dir, name, backend, maxModelLen, blockSize, numBlocks, cacheBytes, 0.9);
	}

	/**
	 * @param gpuMemoryUtilization on a GPU, the KV cache takes this fraction of the device memory still
	 * free once the weights are loaded (when numBlocks is 0); {@code cacheBytes} is the CPU budget
	 */
	public ModelRuntime(Path dir, String name, Backend backend, int maxModelLen, int blockSize, int numBlocks,
			long cacheBytes, double gpuMemoryUtilization) {
		this(dir, name, backend, maxModelLen, blockSize, numBlocks, cacheBytes, gpuMemoryUtilization, WeightType.AUTO,
				DType.F32);
	}

	/**
	 * @param weightType how the weight matrices are held (blockserve.dtype)
	 * @param kvType the KV cache's values: F32, BF16 or F16 (blockserve.kv-cache.dtype)
	 */
	public ModelRuntime(Path dir, String name, Backend backend, int maxModelLen, int blockSize, int numBlocks,
			long cacheBytes, double gpuMemoryUtilization, WeightType weightType, DType kvType) {
		if (!Files.isDirectory(dir)) {
			throw new ModelLoadException(dir + " is not a directory (set blockserve.model to a model folder)");
		}
		this.name = name;
		this.directory = dir;
		this.backend = backend;
		LlamaModel m = LlamaModel.load(dir, backend, maxModelLen, weightType);
		TextTokenizer t = null;
		try {
			t = TextTokenizer.load(dir);
			var c = m.config();
			if (backend.kind().hasDeviceMemory()) {
				cacheBytes = (long) (backend.freeDeviceMemory() * gpuMemoryUtilization);
			}
			else if (cacheBytes < 0 && numBlocks <= 0) {
				var os = (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
					.getOperatingSystemMXBean(); // container-aware: a cgroup's limit, not the host's
				var budget = KvCacheSizing.auto(KvCacheMemory.bytesPerBlock(c.numLayers(), 1, c.numKvHeads(), c.headDim(), kvType),
						m.maxPositions(), m.weightBytes() + m.packedBytes(), os.getTotalMemorySize(), Runtime.getRuntime().maxMemory());
				cacheBytes = budget.bytes();
				this.cacheSizing = budget.why();
			}
			int blocks = numBlocks > 0 ? numBlocks
					: (int) Math.min(Integer.MAX_VALUE,
							cacheBytes / KvCacheMemory.bytesPerBlock(c.numLayers(), blockSize, c.numKvHeads(), c.headDim(),
									kvType));
			if (blocks < 1) {
				throw new ModelLoadException("the KV cache budget of " + cacheBytes + " bytes holds no block of "
						+ blockSize + " tokens; raise blockserve.kv-cache.memory");
			}
			this.cache = m.newKvCache(blocks, blockSize, kvType);
			this.generationConfig = GenerationConfig.read(dir, c);
		}
		catch (RuntimeException e) {
			if (t != null) {
				t.close();
			}
			m.close();
			throw e;
		}
		this.model = m;
		this.tokenizer = t;
	}

	public String name() {
		return name;
	}

	/** How the CPU KV budget was sized to the model, or null when it was given. */
	public String cacheSizing() {
		return cacheSizing;
	}

	/**
	 * Makes sure one sequence of the served context length fits in the KV cache, as vLLM checks at start-up:
	 * a server that cannot hold one would reject every request that leaves max_tokens to the context.
	 * When the context length was configured explicitly, start-up fails naming both numbers; when it was
	 * the model's default, it is lowered to what the cache holds and {@code warn} is told.
	 */
	public void fitContextToCache(boolean explicitMaxModelLen, java.util.function.Consumer<String> warn) {
		long capacity = (long) cache.numBlocks() * cache.blockSize();
		int context = model.maxPositions();
		if (capacity >= context) {
			return;
		}
		String sizes = "the KV cache holds " + capacity + " tokens (" + cache.numBlocks() + " blocks of "
				+ cache.blockSize() + ")";
		if (explicitMaxModelLen) {
			throw new ModelLoadException("blockserve.max-model-len is " + context + " tokens, but " + sizes
					+ ": one sequence of that length would never fit. Raise blockserve.kv-cache.memory (or "
					+ "kv-cache.num-blocks, or kv-cache.gpu-memory-utilization on a GPU) or lower blockserve.max-model-len.");
		}
		model.limitPositions((int) capacity);
		warn.accept("The model's context length of " + context + " tokens does not fit: " + sizes
				+ ". Serving a context of " + capacity + " tokens; raise blockserve.kv-cache.memory to serve more.");
	}

	public Path directory() {
		return directory;
	}

	public Backend backend() {
		return backend;
	}

	public LlamaModel model() {
		return model;
	}

	public TextTokenizer tokenizer() {
		return tokenizer;
	}

	public GenerationConfig generationConfig() {
		return generationConfig;
	}

	public KvCacheMemory cache() {
		return cache;
	}

	/** Why {@link #close} must leave the native memory alone (a thread may still use it), or null. */
	private volatile String keepOpen;

	/** Makes {@link #close} leave the native memory allocated: {@code why}, a thread may still be using it. */
	void keepOpen(String why) {
		keepOpen = why;
	}

	@Override
	public void close() {
		if (keepOpen != null) {
			org.slf4j.LoggerFactory.getLogger(ModelRuntime.class)
				.warn("The model's native memory is not freed ({}); it goes with the process", keepOpen);
			return;
		}
		cache.close();
		tokenizer.close();
		model.close();
	}
}
