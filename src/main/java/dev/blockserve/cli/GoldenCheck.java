package dev.blockserve.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.CudaBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Runs every case of each model's golden.json (all cases in one batch, shuffled blocks, through the engine
 * core and its scheduler) on a backend
 * and prints a table: greedy ids exact or not, and the largest first-step logit error. Needs no Spring
 * and no tokenizer, so it runs from a small runtime image on a GPU machine (native/tests/gpu/run.sh).
 * Usage: {@code GoldenCheck --models DIR [--device cpu|cuda|cuda-bf16] [--block-size 16]
 * [--kv-cache-dtype f32|f16]}; exit 0 when every case reproduces (an F16 cache: the same ids, first-step
 * logits within {@code 5e-2}, as GoldenTest holds it on the CPU).
 */
public final class GoldenCheck {

	private GoldenCheck() {
	}

	public static void main(String[] args) {
		System.exit(run(args, System.out));
	}

	public static int run(String[] args, PrintStream out) {
		Path models = null;
		String device = "cpu";
		int blockSize = 16;
		String cpuLevel = "auto";
		String kvCacheDtype = "f32";
		for (int i = 0; i < args.length; i++) {
			switch (args[i]) {
				case "--models" -> models = Path.of(args[++i]);
				case "--device" -> device = args[++i];
				case "--block-size" -> blockSize = Integer.parseInt(args[++i]);
				case "--cpu-level" -> cpuLevel = args[++i];
				case "--kv-cache-dtype" -> kvCacheDtype = args[++i];
				default -> {
					out.println("unknown option " + args[i]);
					return 2;
				}
			}
		}
		if (models == null) {
			out.println("usage: GoldenCheck --models DIR [--device cpu|cuda|cuda-bf16] [--block-size N] [--cpu-level auto|avx512bf16|avx512|avx2|baseline] [--kv-cache-dtype f32|f16]");
			return 2;
		}
		DType kvType;
		try {
			kvType = KvCacheMemory.parseType(kvCacheDtype);
		}
		catch (IllegalArgumentException e) {
			out.println("--kv-cache-dtype must be f32 or f16, got '" + kvCacheDtype + "'");
			return 2;
		}
		if (kvType == DType.BF16) {
			out.println("--kv-cache-dtype bf16 changes later greedy ids of some golden cases by design (docs/benchmarks.md): "
					+ "check f32 or f16");
			return 2;
		}
		boolean ok = true;
		float tolerance = device.equals("cuda-bf16") || kvType == DType.F16 ? 5e-2f : 1e-4f;
		try (Backend backend = switch (device) {
			case "cpu" -> new CpuBackend(0, cpuLevel);
			case "cuda" -> CudaBackend.open(0, false);
			case "cuda-bf16" -> CudaBackend.open(0, true);
			default -> throw new IllegalArgumentException("--device must be cpu, cuda or cuda-bf16");
		}) {
			out.printf("| model | device | cases | greedy ids exact | max first-step logit error (tolerance %.0e, %s cache) |%n",
					tolerance, kvCacheDtype);
			out.println("|---|---|---|---|---|");
			for (String name : List.of("tiny-random-llama", "stories260K", "tiny-random-qwen2", "tiny-random-qwen3",
					"tiny-random-mistral")) {
				Path dir = models.resolve(name);
				if (!Files.isDirectory(dir)) {
					out.println("| " + name + " | missing | | | |");
					ok = false;
					continue;
				}
				JsonNode golden = JsonMapper.builder().build().readTree(dir.resolve("golden.json").toFile());
				boolean stories = name.equals("stories260K");
				List<int[]> prompts = new ArrayList<>();
				List<int[]> expected = new ArrayList<>();
				List<float[]> logits = new ArrayList<>();
				for (JsonNode c : golden.path("cases")) {
					prompts.add(ints(c.path("prompt_ids")));
					expected.add(ints(c.path("greedy_ids")));
					JsonNode l = c.path("first_step_logits");
					float[] f = new float[l.size()];
					for (int j = 0; j < f.length; j++) {
						f[j] = (float) l.get(j).asDouble();
					}
					logits.add(f);
				}
				try (LlamaModel m = LlamaModel.load(dir, backend, 0)) {
					int blocks = prompts.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
					try (KvCacheMemory cache = m.newKvCache(blocks, blockSize, kvType)) {
						KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize, 17), false, name,
								m.config().features().maxWindow());
						SamplingParams params = SamplingParams.greedy(stories ? 96 : 24).toBuilder().ignoreEos(!stories).build();
						List<OfflineGenerator.Result> res;
						try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(512), null,
								GenerationConfig.read(dir, m.config()))) {
							res = gen.generate(prompts, params);
						}
						int exact = 0;
						float worst = 0;
						for (int i = 0; i < res.size(); i++) {
							if (Arrays.equals(res.get(i).tokens(), expected.get(i))) {
								exact++;
							}
							for (int j = 0; j < logits.get(i).length; j++) {
								worst = Math.max(worst, Math.abs(res.get(i).firstLogits()[j] - logits.get(i)[j]));
							}
						}
						boolean pass = exact == res.size() && worst <= tolerance;
						ok &= pass;
						out.printf("| %s | %s | %d | %d/%d %s | %.2e |%n", name,
								backend instanceof CpuBackend c ? "cpu (" + c.level() + ")" : device, res.size(), exact, res.size(),
								pass ? "PASS" : "FAIL", worst);
					}
				}
			}
		}
		catch (RuntimeException e) {
			out.println("error: " + e.getMessage());
			return 1;
		}
		return ok ? 0 : 1;
	}

	private static int[] ints(JsonNode n) {
		int[] a = new int[n.size()];
		for (int i = 0; i < a.length; i++) {
			a[i] = n.get(i).asInt();
		}
		return a;
	}
}
