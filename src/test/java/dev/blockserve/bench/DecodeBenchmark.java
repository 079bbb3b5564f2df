package dev.blockserve.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.backend.WeightPages;
import dev.blockserve.backend.WeightType;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.BlockTable;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.StepInput;
import dev.blockserve.support.TestModelWriter;

/**
 * Decode throughput of a SmolLM2-135M-shaped model with random weights (generated into target/, not
 * committed) at batch 1, 8 and 32, the paged-attention op alone (GB/s of K/V read), and the machine's
 * memory read bandwidth measured the same way, so batch-1 decode can be stated as a fraction of it.
 * Then one request's prefill of 128 and 512 tokens in one step (as llama-bench's pp512).
 * Run: ./mvnw -q test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=dev.blockserve.bench.DecodeBenchmark
 * Args: [threads=2] [steps=24] [batches=1,8,32] [attention=true]
 * Properties: -Dbench.model=DIR (a model folder, e.g. one written by ../shared/tools/make_smol.py DIR bf16),
 * -Dbench.dtype=auto|bf16|f32 (how its matrices are held), -Dbench.level=auto|avx2|... (CPU kernels),
 * -Dbench.prefill=false (decode only, e.g. to profile it), -Dbench.kv-dtype=f32|bf16|f16 (the KV cache's type),
 * -Dbench.context=N (tokens each sequence holds when decode steps are timed; default 128),
 * -Dbench.bf16-activations=true (BF16 matrices take activations rounded to BF16),
 * -Dbench.weight-pages=auto|huge|mapped (where the weights are read from), -Dbench.packed=false (no 12-bit form
 * of the BF16 matrices for batch-1 decode).
 */
public final class DecodeBenchmark {

	public static void main(String[] args) throws Exception {
		int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
		int steps = args.length > 1 ? Integer.parseInt(args[1]) : 24;
		Path dir = Path.of(System.getProperty("bench.model", "target/bench-models/smollm2-135m-random"));
		WeightType dtype = WeightType.parse(System.getProperty("bench.dtype", "auto"));
		DType kvType = KvCacheMemory.parseType(System.getProperty("bench.kv-dtype", "f32"));
		int context = Integer.getInteger("bench.context", 128);
		if (!Files.exists(dir.resolve("model.safetensors"))) {
			System.out.println("writing random SmolLM2-135M-shaped model to " + dir);
			TestModelWriter.smolLm2Shape().write(dir);
		}
		try (CpuBackend backend = new CpuBackend(threads, System.getProperty("bench.level", "auto"))
			.weightPages(WeightPages.parse(System.getProperty("bench.weight-pages", "auto")))
			.packedDecode(Boolean.parseBoolean(System.getProperty("bench.packed", "true")));
				LlamaModel m = LlamaModel.load(dir, backend, Math.max(2048, context + steps + 1), dtype)) {
			if (Boolean.getBoolean("bench.bf16-activations") && !backend.bf16Activations(true)) {
				throw new IllegalStateException("kernels for " + backend.level() + " have no BF16 dot product");
			}
			var c = m.config();
			long weightBytes = m.weightBytes();
			System.out.printf("threads=%d, kernels %s, model: hidden %d, %d layers, heads %d/%d, vocab %d, weights %s %.1f MB, "
					+ "KV cache %s%n", backend.threads(), backend.level(), c.hiddenSize(), c.numLayers(), c.numHeads(),
					c.numKvHeads(), c.vocabSize(), m.matrixType(), weightBytes / 1e6, kvType);
			System.out.println("weight files: " + m.weightPlacement() + "; packed for batch-1 decode: "
					+ (m.packedBytes() > 0 ? String.format("%.1f MB", m.packedBytes() / 1e6) : "none"));
			double bw = readBandwidth(backend);
			System.out.printf("memory read bandwidth (stream_read, 1 GiB, %d threads): %.1f GB/s%n", backend.threads(), bw);
			System.out.println();
			// the median is the kernels' pace; the mean (tokens over the whole timed run, as llama-bench counts)
			// also holds the slow steps this 2-core VM gives now and then (20-140 ms, no allocation involved)
			System.out.println("| batch | context | step ms (median) | tokens/s (median) | step ms (mean) | tokens/s (mean) "
					+ "| weight GB/s (median) | % of read bandwidth |");
			System.out.println("|---|---|---|---|---|---|---|---|");
			int[] batches = args.length > 2 ? Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray()
					: new int[] { 1, 8, 32 };
			for (int batch : batches) {
				double[] t = decodeTimes(m, batch, context, steps, kvType);
				double ms = t[0], mean = t[1];
				double gbs = weightBytes / (ms / 1e3) / 1e9;
				System.out.printf("| %d | %d | %.2f | %.1f | %.2f | %.1f | %.1f | %.0f%% |%n", batch, context, ms, batch / (ms / 1e3),
						mean, batch / (mean / 1e3), gbs, 100 * gbs / bw);
			}
			System.out.println();
			if (!Boolean.parseBoolean(System.getProperty("bench.prefill", "true"))) {
				return;
			}
			System.out.println("| prefill tokens | ms (median) | tokens/s | GFLOP/s (2 x matrix params x tokens) |");
			System.out.println("|---|---|---|---|");
			long macsPerToken = (long) c.numLayers()
					* ((long) c.hiddenSize() * (c.qDim() + 2L * c.kvDim()) + (long) c.qDim() * c.hiddenSize()
							+ 3L * c.hiddenSize() * c.intermediateSize());
			// -Dbench.prefill-sizes / -Dbench.prefill-reps: one size many times for a profiler
			int reps = Integer.getInteger("bench.prefill-reps", 5);
			for (int p : Arrays.stream(System.getProperty("bench.prefill-sizes", "128,512").split(","))
				.mapToInt(Integer::parseInt).toArray()) {
				double ms = prefill(m, p, reps, kvType);
				System.out.printf("| %d | %.1f | %.1f | %.1f |%n", p, ms, p / (ms / 1e3), 2.0 * macsPerToken * p / (ms / 1e3) / 1e9);
			}
			System.out.println();
			if (args.length < 4 || Boolean.parseBoolean(args[3])) {
				attention(backend, kvType);
			}
		}
	}

	static double readBandwidth(CpuBackend backend) {
		long floats = (1L << 30) / 4;
		try (NativeBuffer b = backend.allocate(floats, DType.F32)) {
			double[] t = new double[7];
			for (int i = 0; i < t.length; i++) {
				long t0 = System.nanoTime();
				backend.streamRead(b, floats);
				t[i] = (System.nanoTime() - t0) / 1e9;
			}
			return floats * 4 / median(t) / 1e9;
		}
	}

	/** Median milliseconds of one decode step for {@code batch} sequences that each hold {@code context} tokens. */
	static double decode(LlamaModel m, int batch, int context, int steps, DType kvType) {
		return decodeTimes(m, batch, context, steps, kvType)[0];
	}

	/** Median and mean milliseconds of a decode step, the first steps (JIT and caches warming) left out. */
	static double[] decodeTimes(LlamaModel m, int batch, int context, int steps, DType kvType) {
		int bs = 16;
		int perSeq = (context + steps + bs) / bs + 1;
		try (KvCacheMemory cache = m.newKvCache(batch * perSeq, bs, kvType)) {
			// each sequence's blocks, consecutive in the pool as a fresh pool hands them out
			KvCacheManager kv = new KvCacheManager(new BlockPool(batch * perSeq, bs), false, "bench");
			BlockTable[] tables = new BlockTable[batch];
			int[][] tokens = new int[batch][context + steps + 1];
			Random r = new Random(1);
			StepInput in = new StepInput();
			// prefill each sequence's context (one sequence per step to bound the workspace)
			for (int s = 0; s < batch; s++) {
				tables[s] = kv.newTable(s);
				kv.allocate(tables[s], perSeq * bs, null);
				for (int i = 0; i < context; i++) {
					tokens[s][i] = r.nextInt(m.config().vocabSize());
				}
				in.reset(bs, perSeq);
				in.addSequence(tokens[s], 0, context, tables[s]);
				m.forward(in, cache);
			}
			int[] last = new int[batch];
			double[] t = new double[steps];
			for (int step = 0; step < steps; step++) {
				in.reset(bs, perSeq);
				for (int s = 0; s < batch; s++) {
					tokens[s][context + step] = last[s];
					in.addSequence(tokens[s], context + step, 1, tables[s]);
				}
				long t0 = System.nanoTime();
				m.forward(in, cache);
				m.argmax(batch, last);
				t[step] = (System.nanoTime() - t0) / 1e6;
			}
			// the first steps warm the JIT and the caches
			double[] timed = Arrays.copyOfRange(t, Math.min(4, steps - 1), steps);
			return new double[] { median(timed), Arrays.stream(timed).average().orElse(0) };
		}
	}

	/** Median milliseconds of one request's whole prompt of {@code tokens} in one step (fresh cache each time). */
	static double prefill(LlamaModel m, int tokens, int reps, DType kvType) {
		int bs = 16;
		int perSeq = tokens / bs + 1;
		double[] t = new double[reps + 1];
		Random r = new Random(2);
		int[] ids = new int[tokens];
		for (int i = 0; i < tokens; i++) {
			ids[i] = r.nextInt(m.config().vocabSize());
		}
		try (KvCacheMemory cache = m.newKvCache(perSeq, bs, kvType)) {
			for (int rep = 0; rep <= reps; rep++) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(perSeq, bs), false, "bench");
				BlockTable table = kv.newTable(0);
				kv.allocate(table, perSeq * bs, null);
				StepInput in = new StepInput();
				in.reset(bs, perSeq);
				in.addSequence(ids, 0, tokens, table);
				long t0 = System.nanoTime();
				m.forward(in, cache);
				t[rep] = (System.nanoTime() - t0) / 1e6;
			}
		}
		return median(Arrays.copyOfRange(t, 1, t.length)); // the first warms the JIT and the workspace
	}

	static void attention(CpuBackend backend, DType kvType) {
		System.out.println("| op | batch | context | heads/kv | head_dim | block | ms (median) | K/V GB/s |");
		System.out.println("|---|---|---|---|---|---|---|---|");
		int heads = 9, kvh = 3, hd = 64, bs = 16;
		for (int[] bc : new int[][] { { 1, 2048 }, { 8, 1024 }, { 32, 512 }, { 32, 2048 } }) {
			int batch = bc[0], ctx = bc[1];
			int perSeq = ctx / bs;
			try (KvCacheMemory cache = new KvCacheMemory(backend, 1, batch * perSeq, bs, kvh, hd, kvType);
					NativeBuffer q = backend.allocate((long) batch * heads * hd, DType.F32);
					NativeBuffer out = backend.allocate((long) batch * heads * hd, DType.F32);
					NativeBuffer tables = backend.allocate((long) batch * perSeq, DType.I32);
					NativeBuffer lens = backend.allocate(batch, DType.I32);
					NativeBuffer qs = backend.allocate(batch + 1, DType.I32)) {
				int[] t = new int[batch * perSeq];
				for (int i = 0; i < t.length; i++) {
					t[i] = i;
				}
				// shuffle so blocks are not contiguous
				Random r = new Random(3);
				for (int i = t.length - 1; i > 0; i--) {
					int j = r.nextInt(i + 1);
					int x = t[i];
					t[i] = t[j];
					t[j] = x;
				}
				backend.upload(tables, t, t.length);
				int[] l = new int[batch];
				int[] start = new int[batch + 1];
				Arrays.fill(l, ctx);
				for (int s = 0; s <= batch; s++) {
					start[s] = s;
				}
				backend.upload(lens, l, batch);
				backend.upload(qs, start, batch + 1);
				double[] times = new double[15];
				for (int i = 0; i < times.length; i++) {
					long t0 = System.nanoTime();
					backend.pagedAttention(out, q, cache, 0, tables, perSeq, lens, qs, batch, batch, heads, 0.125f, 0);
					times[i] = (System.nanoTime() - t0) / 1e6;
				}
				double ms = median(Arrays.copyOfRange(times, 3, times.length));
				double bytes = 2.0 * batch * ctx * kvh * hd * kvType.bytes();
				System.out.printf("| decode attention | %d | %d | %d/%d | %d | %d | %.3f | %.1f |%n", batch, ctx, heads,
						kvh, hd, bs, ms, bytes / (ms / 1e3) / 1e9);
			}
		}
	}

	static double median(double[] a) {
		double[] s = a.clone();
		Arrays.sort(s);
		return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
	}
}
