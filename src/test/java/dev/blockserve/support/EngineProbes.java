package dev.blockserve.support;

import dev.blockserve.engine.Engine;

/** Reads of a running engine's core, taken on its thread between steps. */
public final class EngineProbes {

	private EngineProbes() {
	}

	/** Blocks not free. */
	public static int usedBlocks(Engine engine) throws InterruptedException {
		return engine.inspect(c -> c.kv().pool().numBlocks() - c.kv().pool().numFree());
	}

	/** Checks the block manager's invariants; throws naming the first violation. */
	public static void checkInvariants(Engine engine) throws InterruptedException {
		engine.inspect(c -> {
			c.kv().checkInvariants();
			return null;
		});
	}
}
