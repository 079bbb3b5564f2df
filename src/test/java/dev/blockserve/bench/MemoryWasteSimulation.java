package dev.blockserve.bench;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.BlockTable;
import dev.blockserve.kvcache.KvCacheManager;

/**
 * How much allocated KV memory holds no token: a few thousand requests with long-tailed (log-normal)
 * prompt and output lengths go through a continuous-batching loop over the real block manager; at every
 * step the fraction of allocated slots not holding a token is sampled. Compared with reserving each
 * request's maximum length up front, as servers without paging must.
 * Run: {@code java -cp <test classpath> dev.blockserve.bench.MemoryWasteSimulation}
 */
public final class MemoryWasteSimulation {

	/** Mean over steps of (allocated slots - tokens) / allocated slots, paged and reserved-up-front. */
	public record Result(int blockSize, int requests, long steps, double pagedWaste, double reservedWaste,
			double meanRunning) {
	}

	public static Result run(int blockSize, int numRequests, long seed) {
		Random r = new Random(seed);
		int[] prompt = new int[numRequests];
		int[] output = new int[numRequests];
		for (int i = 0; i < numRequests; i++) {
			prompt[i] = (int) Math.min(4096, Math.max(1, Math.round(Math.exp(5.3 + 1.0 * r.nextGaussian())))); // median ~200
			output[i] = (int) Math.min(2048, Math.max(1, Math.round(Math.exp(4.8 + 1.0 * r.nextGaussian())))); // median ~120
		}
		int maxTokens = 2048; // the per-request reservation a non-paged server would make for output
		int numBlocks = 200_000 / blockSize; // 200k token slots
		KvCacheManager m = new KvCacheManager(new BlockPool(numBlocks, blockSize), false, "sim");
		ArrayDeque<Integer> waiting = new ArrayDeque<>();
		for (int i = 0; i < numRequests; i++) {
			waiting.add(i);
		}
		List<int[]> running = new ArrayList<>(); // {request, tokens so far}
		List<BlockTable> tables = new ArrayList<>();
		double pagedSum = 0, reservedSum = 0, runningSum = 0;
		long steps = 0;
		while (!waiting.isEmpty() || !running.isEmpty()) {
			// admit while the prompt fits (each request at most 256 at once, as max-num-seqs would)
			while (!waiting.isEmpty() && running.size() < 256) {
				int q = waiting.peek();
				BlockTable t = m.newTable(q);
				if (!m.allocate(t, prompt[q] + 1, null)) {
					m.free(t);
					break;
				}
				waiting.poll();
				running.add(new int[] { q, prompt[q] + 1 });
				tables.add(t);
			}
			long allocated = 0, used = 0, reserved = 0;
			for (int i = 0; i < running.size(); i++) {
				allocated += (long) tables.get(i).size() * blockSize;
				used += running.get(i)[1];
				reserved += prompt[running.get(i)[0]] + maxTokens;
			}
			if (allocated > 0) {
				pagedSum += 1.0 - (double) used / allocated;
				reservedSum += 1.0 - (double) used / reserved;
				runningSum += running.size();
				steps++;
			}
			// one decode step: every running request appends a token, or finishes
			for (int i = running.size() - 1; i >= 0; i--) {
				int[] s = running.get(i);
				int q = s[0];
				if (s[1] >= prompt[q] + output[q]) {
					m.free(tables.remove(i));
					running.remove(i);
					continue;
				}
				if (!m.allocate(tables.get(i), s[1] + 1, null)) {
					// out of blocks: preempt this request (recompute later)
					m.free(tables.remove(i));
					running.remove(i);
					waiting.addFirst(q);
					continue;
				}
				s[1]++;
			}
		}
		return new Result(blockSize, numRequests, steps, pagedSum / steps, reservedSum / steps, runningSum / steps);
	}

	public static void main(String[] args) {
		int n = args.length > 0 ? Integer.parseInt(args[0]) : 3000;
		System.out.println("| block size | requests | steps | mean running | paged: slots without a token | reserved up front (prompt + 2048) |");
		System.out.println("|---|---|---|---|---|---|");
		for (int bs : new int[] { 8, 16, 32 }) {
			Result res = run(bs, n, 42);
			System.out.printf("| %d | %d | %d | %.0f | %.2f%% | %.1f%% |%n", bs, res.requests(), res.steps(),
					res.meanRunning(), 100 * res.pagedWaste(), 100 * res.reservedWaste());
		}
	}
}
