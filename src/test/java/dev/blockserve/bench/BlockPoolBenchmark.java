package dev.blockserve.bench;

import java.util.concurrent.TimeUnit;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.BlockTable;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.kvcache.KvCacheSnapshot;
import dev.blockserve.kvcache.PrefixMatch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Block pool costs on one thread. Run:
 * {@code java -cp <test classpath> org.openjdk.jmh.Main BlockPoolBenchmark -f 1 -wi 3 -i 5 -w 1s -r 1s}
 */
@State(Scope.Thread)
public class BlockPoolBenchmark {

	private BlockPool pool;

	private KvCacheManager cacheManager;

	private int[] prompt;

	private final PrefixMatch match = new PrefixMatch();

	private KvCacheManager bigManager;

	@Setup
	public void setup() {
		pool = new BlockPool(4096, 16);
		// A 1024-token prompt whose 64 blocks are all cached.
		cacheManager = new KvCacheManager(new BlockPool(256, 16), true, "bench");
		prompt = new int[1025];
		for (int i = 0; i < prompt.length; i++) {
			prompt[i] = (i * 31) % 49152;
		}
		BlockTable t = cacheManager.newTable(1);
		cacheManager.allocate(t, prompt.length, null);
		cacheManager.commit(t, prompt, prompt.length);
		// 100,000 blocks: 2,000 requests of 25 blocks, the first 5 blocks of each shared by pairs, some cached.
		bigManager = new KvCacheManager(new BlockPool(100_000, 16, 9), true, "bench");
		int[] toks = new int[400];
		for (int r = 0; r < 2000; r++) {
			for (int i = 0; i < toks.length; i++) {
				toks[i] = i < 80 ? (r / 2) * 7 + i : r * 1000 + i;
			}
			BlockTable bt = bigManager.newTable(r);
			bigManager.matchPrefix(toks, toks.length, match);
			bigManager.allocate(bt, toks.length, match);
			bigManager.commit(bt, toks, toks.length);
			if (r % 10 == 9) {
				bigManager.free(bt);
			}
		}
	}

	/** One block allocated and freed. */
	@Benchmark
	@BenchmarkMode(Mode.Throughput)
	@OutputTimeUnit(TimeUnit.MICROSECONDS)
	public int allocateFree() {
		int b = pool.allocate();
		pool.release(b);
		return b;
	}

	/** Prefix lookup, per block: a 1025-token prompt matched against 64 cached blocks. */
	@Benchmark
	@BenchmarkMode(Mode.AverageTime)
	@OutputTimeUnit(TimeUnit.NANOSECONDS)
	@OperationsPerInvocation(64)
	public int prefixLookupPerBlock() {
		return cacheManager.matchPrefix(prompt, prompt.length, match).numBlocks();
	}

	/** Snapshot of a 100,000-block pool holding 1,800 requests. */
	@Benchmark
	@BenchmarkMode(Mode.AverageTime)
	@OutputTimeUnit(TimeUnit.MICROSECONDS)
	public KvCacheSnapshot snapshot100k() {
		return bigManager.snapshot();
	}
}
