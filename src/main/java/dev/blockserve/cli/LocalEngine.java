package dev.blockserve.cli;

import java.nio.file.Path;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.WeightPages;
import dev.blockserve.backend.WeightType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.EngineCore;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.scheduler.SpeculativeConfig;

/**
 * A model on the CPU with an engine core and a KV cache for one full context, for the commands that run
 * without a server ({@code generate}, {@code chat}); prefix caching on, so a chat's earlier turns are
 * reused. Closing it releases everything in reverse order. Used by the command's thread alone.
 */
final class LocalEngine implements AutoCloseable {

	final CpuBackend backend;

	final LlamaModel model;

	final TextTokenizer tokenizer;

	final KvCacheMemory cache;

	final EngineCore core;

	LocalEngine(Path dir, int threads, int blockSize) {
		this(dir, threads, blockSize, WeightType.AUTO, WeightPages.AUTO, DType.F32, SpeculativeConfig.OFF);
	}

	LocalEngine(Path dir, int threads, int blockSize, WeightType weightType, WeightPages pages, DType kvType,
			SpeculativeConfig speculative) {
		backend = new CpuBackend(threads).weightPages(pages);
		LlamaModel m = null;
		TextTokenizer t = null;
		KvCacheMemory c = null;
		try {
			m = LlamaModel.load(dir, backend, 0, weightType);
			t = TextTokenizer.load(dir);
			int blocks = (m.maxPositions() + blockSize - 1) / blockSize;
			c = m.newKvCache(blocks, blockSize, kvType);
			core = new EngineCore(m, c,
					new KvCacheManager(new BlockPool(blocks, blockSize), true, dir.toString(), m.config().features().maxWindow()),
					SchedulerConfig.cpuDefaults().withSpeculative(speculative), t, GenerationConfig.read(dir, m.config()), null);
		}
		catch (RuntimeException e) {
			for (AutoCloseable a : new AutoCloseable[] { c, t, m, backend }) {
				closeQuietly(a);
			}
			throw e;
		}
		model = m;
		tokenizer = t;
		cache = c;
	}

	/** Steps the core until every request added has ended. */
	void runToCompletion() {
		while (core.hasWork()) {
			core.step();
		}
	}

	private static void closeQuietly(AutoCloseable a) {
		if (a != null) {
			try {
				a.close();
			}
			catch (Exception ignored) {
				// already failing: the first error is the one reported
			}
		}
	}

	@Override
	public void close() {
		core.close();
		cache.close();
		tokenizer.close();
		model.close();
		backend.close();
	}
}
