package dev.blockserve.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.scheduler.SpeculativeConfig;
import dev.blockserve.support.DraftCounter;

/**
 * Decoding (greedy, or seeded sampling at -Dbench.temperature) with and without prompt-lookup speculation, the configurations interleaved round by
 * round: output tokens/s of each prompt alone (batch 1) and of all prompts at once, and the acceptance
 * rate. Prompts: the lines of -Dbench.prompts=FILE (tokenized by the model's tokenizer), else random ids.
 * Run: ./mvnw -q test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=dev.blockserve.bench.SpeculativeBenchmark
 * Args: [threads=2] [rounds=3] [newTokens=128] [draftCounts=0,2,4,8]; -Dbench.model=DIR, -Dbench.lookup=MIN-MAX (2-4).
 */
public final class SpeculativeBenchmark {

	public static void main(String[] args) throws Exception {
		int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
		int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
		int newTokens = args.length > 2 ? Integer.parseInt(args[2]) : 128;
		int[] drafts = Arrays.stream((args.length > 3 ? args[3] : "0,2,4,8").split(",")).mapToInt(Integer::parseInt).toArray();
		String[] lookup = System.getProperty("bench.lookup", "2-4").split("-");
		Path dir = Path.of(System.getProperty("bench.model", "../shared/models/stories260K"));
		try (CpuBackend backend = new CpuBackend(threads); LlamaModel m = LlamaModel.load(dir, backend, 0)) {
			List<int[]> prompts = new ArrayList<>();
			String file = System.getProperty("bench.prompts");
			if (file != null) {
				try (TextTokenizer tok = TextTokenizer.load(dir)) {
					for (String line : Files.readAllLines(Path.of(file))) {
						if (!line.isBlank()) {
							prompts.add(tok.encode(line, true));
						}
					}
				}
			}
			else {
				Random r = new Random(7);
				for (int i = 0; i < 8; i++) {
					prompts.add(r.ints(128, 3, Math.min(40000, m.config().vocabSize())).toArray());
				}
			}
			int blockSize = 16;
			int blocks = prompts.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			double temperature = Double.parseDouble(System.getProperty("bench.temperature", "0"));
			SamplingParams p = SamplingParams.greedy(newTokens).toBuilder().ignoreEos(true).temperature(temperature)
				.seed(temperature > 0 ? 17L : null).build();
			System.out.printf("model %s, %s weights, %d threads, %d prompts (%d-%d tokens), %d new tokens each, lookup %s-%s, "
					+ "temperature %s%n", dir.getFileName(), m.matrixType(), backend.threads(), prompts.size(),
					prompts.stream().mapToInt(a -> a.length).min().orElse(0), prompts.stream().mapToInt(a -> a.length).max().orElse(0),
					newTokens, lookup[0], lookup[1], temperature);
			double[][] alone = new double[drafts.length][rounds], batched = new double[drafts.length][rounds];
			long[] generated = new long[drafts.length], stepsAlone = new long[drafts.length];
			long[] draftedAlone = new long[drafts.length], acceptedAlone = new long[drafts.length];
			DraftCounter[] counts = new DraftCounter[drafts.length];
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize)) {
				for (int round = 0; round < rounds; round++) {
					for (int d = 0; d < drafts.length; d++) {
						var config = OfflineGenerator.batchConfig(512);
						if (drafts[d] > 0) {
							config = config.withSpeculative(new SpeculativeConfig(drafts[d], Integer.parseInt(lookup[0]),
									Integer.parseInt(lookup[1]), 256));
						}
						counts[d] = new DraftCounter();
						KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize), false, "bench", 0);
						try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, config, null,
								GenerationConfig.read(dir, m.config()), counts[d])) {
							gen.generate(List.of(prompts.get(0)), SamplingParams.greedy(8)); // warm
							long t0 = System.nanoTime();
							long tokens = 0;
							counts[d].reset(); // count the prompts alone, the warm-up excluded
							for (int[] prompt : prompts) {
								tokens += gen.generate(List.of(prompt), p).get(0).tokens().length;
							}
							alone[d][round] = tokens / ((System.nanoTime() - t0) / 1e9);
							generated[d] = tokens;
							stepsAlone[d] = counts[d].steps;
							draftedAlone[d] = counts[d].drafted;
							acceptedAlone[d] = counts[d].accepted;
							t0 = System.nanoTime();
							tokens = gen.generate(prompts, p).stream().mapToLong(x -> x.tokens().length).sum();
							batched[d][round] = tokens / ((System.nanoTime() - t0) / 1e9);
						}
					}
				}
			}
			verificationCost(m, 128, new int[] { 1, 2, 3, 4, 5, 7, 9 }, 40);
			System.out.println("| drafts | alone, tok/s (rounds) | median | all at once, tok/s (rounds) | median | alone: accepted / drafted | alone: new tokens a decode step |");
			System.out.println("|---|---|---|---|---|---|---|");
			for (int d = 0; d < drafts.length; d++) {
				double perStep = (generated[d] - prompts.size()) / (double) (stepsAlone[d] - prompts.size()); // the first token: prefill's
				System.out.printf("| %d | %s | %.1f | %s | %.1f | %s | %.2f |%n", drafts[d], fmt(alone[d]), median(alone[d]),
						fmt(batched[d]), median(batched[d]), draftedAlone[d] == 0 ? "-"
								: String.format("%d / %d (%.0f%%)", acceptedAlone[d], draftedAlone[d],
										100.0 * acceptedAlone[d] / draftedAlone[d]),
						perStep);
			}
		}
	}

	/**
	 * What a step that verifies drafts costs: one sequence holding {@code context} tokens computes q new
	 * tokens with logits for all q (1 + drafts) instead of 1; the q values interleaved, medians in ms. A
	 * step whose drafts are all rejected pays this ratio for its one token.
	 */
	static void verificationCost(LlamaModel m, int context, int[] qs, int reps) {
		int bs = 16;
		int perSeq = (context + 16) / bs + 1;
		try (KvCacheMemory cache = m.newKvCache(perSeq, bs)) {
			KvCacheManager kv = new KvCacheManager(new BlockPool(perSeq, bs), false, "bench");
			dev.blockserve.kvcache.BlockTable table = kv.newTable(0);
			kv.allocate(table, perSeq * bs, null);
			int[] tokens = new Random(3).ints(context + 16, 3, Math.min(40000, m.config().vocabSize())).toArray();
			dev.blockserve.model.StepInput in = new dev.blockserve.model.StepInput();
			in.reset(bs, perSeq);
			in.addSequence(tokens, 0, context, table);
			m.forward(in, cache);
			int[] argmax = new int[16];
			double[][] t = new double[qs.length][reps];
			for (int rep = 0; rep < reps; rep++) {
				for (int i = 0; i < qs.length; i++) {
					in.reset(bs, perSeq);
					in.addSequence(tokens, context, qs[i], table, qs[i]);
					long t0 = System.nanoTime();
					m.forward(in, cache);
					m.argmax(qs[i], argmax);
					t[i][rep] = (System.nanoTime() - t0) / 1e6;
				}
			}
			System.out.println("| tokens in the step (1 + drafts) | step ms (median) | cost relative to 1 |");
			System.out.println("|---|---|---|");
			double one = median(Arrays.copyOfRange(t[0], 5, reps));
			for (int i = 0; i < qs.length; i++) {
				double ms = median(Arrays.copyOfRange(t[i], 5, reps));
				System.out.printf("| %d | %.2f | %.2f |%n", qs[i], ms, ms / one);
			}
			System.out.println();
		}
	}

	static String fmt(double[] v) {
		StringBuilder sb = new StringBuilder();
		for (double x : v) {
			sb.append(sb.length() > 0 ? " / " : "").append(String.format("%.1f", x));
		}
		return sb.toString();
	}

	static double median(double[] v) {
		double[] s = v.clone();
		Arrays.sort(s);
		return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
	}
}
