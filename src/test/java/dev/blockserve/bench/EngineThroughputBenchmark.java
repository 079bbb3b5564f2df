package dev.blockserve.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.EngineConfig;
import dev.blockserve.engine.GenerationEvent;
import dev.blockserve.engine.ModelRuntime;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.support.TestModelWriter;
import reactor.core.publisher.Flux;

/**
 * Offline throughput: 256 prompts through the engine on the SmolLM2-135M-shaped random model, all
 * submitted at once (continuous batching), against the same prompts issued one at a time, in one run.
 * Run: {@code java -cp <test classpath> dev.blockserve.bench.EngineThroughputBenchmark [prompts=256] [promptLen=32] [outLen=32]
 * [temperature=0] [topP=1]} (greedy by default; a temperature samples, with the request's top-p).
 */
public final class EngineThroughputBenchmark {

	public static void main(String[] args) throws Exception {
		int n = args.length > 0 ? Integer.parseInt(args[0]) : 256;
		int promptLen = args.length > 1 ? Integer.parseInt(args[1]) : 32;
		int outLen = args.length > 2 ? Integer.parseInt(args[2]) : 32;
		double temperature = args.length > 3 ? Double.parseDouble(args[3]) : 0;
		double topP = args.length > 4 ? Double.parseDouble(args[4]) : 1;
		Path dir = Path.of("target", "bench-models", "smollm2-135m-random");
		TestModelWriter w = TestModelWriter.smolLm2Shape();
		if (!Files.exists(dir.resolve("model.safetensors"))) {
			w.write(dir);
		}
		if (!Files.exists(dir.resolve("tokenizer.json"))) {
			w.writeWordLevelTokenizer(dir);
		}
		Random r = new Random(11);
		List<int[]> prompts = new ArrayList<>();
		for (int i = 0; i < n; i++) {
			int[] p = new int[promptLen];
			for (int j = 0; j < promptLen; j++) {
				p[j] = r.nextInt(49152);
			}
			prompts.add(p);
		}
		SamplingParams params = SamplingParams.builder().maxTokens(outLen).temperature(temperature).topP(topP).seed(7L)
			.ignoreEos(true).build();
		try (CpuBackend backend = new CpuBackend(2);
				ModelRuntime rt = new ModelRuntime(dir, backend, 2048, 16, n * ((promptLen + outLen) / 16 + 2), 0);
				Engine engine = new Engine(rt, new EngineConfig(new SchedulerConfig(n, 2048, 512,
						SchedulerConfig.Policy.FCFS), false), null)) {
			// warm-up
			run(engine, prompts.subList(0, 4), params);
			long t0 = System.nanoTime();
			long tokens = run(engine, prompts, params);
			double batched = (System.nanoTime() - t0) / 1e9;
			long t1 = System.nanoTime();
			long tokens1 = 0;
			for (int[] p : prompts) {
				tokens1 += run(engine, List.of(p), params);
			}
			double single = (System.nanoTime() - t1) / 1e9;
			System.out.printf("| mode | prompts | prompt/output tokens | wall s | output tokens/s |%n|---|---|---|---|---|%n");
			System.out.printf("| all at once (continuous batching, max-num-seqs %d) | %d | %d/%d | %.1f | %.1f |%n", n, n,
					promptLen, outLen, batched, tokens / batched);
			System.out.printf("| one at a time | %d | %d/%d | %.1f | %.1f |%n", n, promptLen, outLen, single,
					tokens1 / single);
			System.out.printf("speed-up: %.1fx%n", (tokens / batched) / (tokens1 / single));
		}
	}

	static long run(Engine engine, List<int[]> prompts, SamplingParams params) {
		List<Flux<GenerationEvent>> fluxes = new ArrayList<>();
		for (int[] p : prompts) {
			fluxes.add(engine.submit(p, params, 0).events());
		}
		return Flux.merge(fluxes).filter(e -> e.tokenIds().length > 0).count().block(Duration.ofMinutes(30));
	}
}
