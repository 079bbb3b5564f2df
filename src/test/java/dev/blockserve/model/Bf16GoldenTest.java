package dev.blockserve.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.HugePages;
import dev.blockserve.backend.WeightPages;
import dev.blockserve.backend.WeightType;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * BF16 checkpoints compute what an F32 run on their BF16 values computes: each shared model is copied
 * with every tensor rounded to BF16 (src/test/resources/bf16_reference.py), the independent numpy
 * reference (../shared/tools/hf_llama_ref.py) gives that copy's greedy ids and first-step logits, and the
 * engine must reproduce them exactly with the weights used in place as BF16 ({@code dtype=auto}). Serving
 * the F32 original with {@code dtype=bf16} rounds its matrices only (norms and biases stay F32), so it is
 * checked against a second reference with just the matrices rounded. Runs where python3 with numpy is present
 * (CI installs it; under CI its absence fails the test), else skips with the reason.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class Bf16GoldenTest {

	static final int STEPS = 24;

	record Case(int[] prompt, int[] ids, float[] firstLogits, double minMargin) {
	}

	@ParameterizedTest(name = "{0}")
	@ValueSource(strings = { "tiny-random-llama", "stories260K", "tiny-random-qwen2", "tiny-random-qwen3",
			"tiny-random-mistral" })
	void bf16CheckpointReproducesItsReference(String model, @TempDir Path tmp) throws Exception {
		Path copy = tmp.resolve(model + "-bf16");
		List<Case> cases = reference(SharedModels.dir(model), copy, false);
		assertThat(cases).isNotEmpty();
		// as shipped: BF16 matrices read in place from the mapped file (norms widened to F32, exactly)
		List<int[]> asShipped = run(copy, WeightType.AUTO, cases, DType.BF16);
		for (int i = 0; i < cases.size(); i++) {
			assertThat(asShipped.get(i)).as("BF16 checkpoint, case %d (reference's smallest top-2 gap %.2g)", i,
					cases.get(i).minMargin()).containsExactly(cases.get(i).ids());
		}
		// the same from a copy of the file in anonymous huge pages (blockserve.weight-pages=huge)
		List<int[]> fromHugePages = run(copy, WeightType.AUTO, cases, DType.BF16, WeightPages.HUGE);
		assertThat(fromHugePages).usingRecursiveComparison().isEqualTo(asShipped);
		// the F32 original with its matrices rounded at load
		List<Case> matrices = reference(SharedModels.dir(model), tmp.resolve(model + "-bf16-matrices"), true);
		List<int[]> rounded = run(SharedModels.dir(model), WeightType.BF16, matrices, DType.BF16);
		for (int i = 0; i < matrices.size(); i++) {
			assertThat(rounded.get(i)).as("F32 checkpoint served with dtype=bf16, case %d", i)
				.containsExactly(matrices.get(i).ids());
		}
		// and dtype=f32 of the BF16 copy widens at load: the same numbers as BF16 in place
		List<int[]> widened = run(copy, WeightType.F32, cases, DType.F32);
		assertThat(widened).usingRecursiveComparison().isEqualTo(asShipped);
	}

	/** Runs every case greedily, checks the first-step logits, returns the ids. */
	static List<int[]> run(Path dir, WeightType type, List<Case> cases, DType expectedType) {
		return run(dir, type, cases, expectedType, WeightPages.MAPPED);
	}

	static List<int[]> run(Path dir, WeightType type, List<Case> cases, DType expectedType, WeightPages pages) {
		List<int[]> out = new ArrayList<>();
		try (CpuBackend backend = new CpuBackend(0).weightPages(pages); LlamaModel m = LlamaModel.load(dir, backend, 0, type);
				KvCacheMemory cache = m.newKvCache(cases.size() * 8 + 8, 16)) {
			assertThat(m.matrixType()).isEqualTo(expectedType);
			if (pages == WeightPages.HUGE && HugePages.available()) {
				assertThat(m.weightPlacement()).startsWith("model.safetensors copied into memory, ");
			}
			KvCacheManager kv = new KvCacheManager(new BlockPool(cases.size() * 8 + 8, 16), false, "bf16",
					m.config().features().maxWindow());
			SamplingParams p = SamplingParams.greedy(STEPS).toBuilder().ignoreEos(true).build();
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, kv, OfflineGenerator.batchConfig(512), null,
					GenerationConfig.read(dir, m.config()))) {
				List<OfflineGenerator.Result> results = gen.generate(cases.stream().map(Case::prompt).toList(), p);
				for (int i = 0; i < cases.size(); i++) {
					GoldenTest.assertLogitsClose(results.get(i).firstLogits(), cases.get(i).firstLogits(), i);
					out.add(results.get(i).tokens());
				}
			}
		}
		return out;
	}

	/** Writes the BF16 copy and returns the reference's cases for it, or skips when python3/numpy is missing. */
	static List<Case> reference(Path source, Path copy, boolean matricesOnly) throws Exception {
		Path script = Path.of("src/test/resources/bf16_reference.py").toAbsolutePath();
		boolean numpy = new ProcessBuilder("python3", "-c", "import numpy").start().waitFor() == 0
				&& Files.isRegularFile(SharedModels.ROOT.resolve("../tools/hf_llama_ref.py"));
		if (!numpy && "true".equals(System.getenv("CI"))) {
			throw new AssertionError("CI must have python3 with numpy (.ci/run installs python3-numpy)");
		}
		Assumptions.assumeTrue(numpy, "python3 with numpy or ../shared/tools missing: the BF16 reference is skipped");
		Path err = copy.resolveSibling("reference.err");
		Process p = new ProcessBuilder("python3", script.toString(), source.toString(), copy.toString(),
				Integer.toString(STEPS), matricesOnly ? "matrices" : "all").redirectError(err.toFile()).start();
		String json = new String(p.getInputStream().readAllBytes());
		assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
		assertThat(p.exitValue()).as(Files.readString(err)).isZero();
		List<Case> cases = new ArrayList<>();
		for (JsonNode c : JsonMapper.builder().build().readTree(json).path("cases")) {
			cases.add(new Case(ints(c.path("prompt_ids")), ints(c.path("greedy_ids")), floats(c.path("first_step_logits")),
					c.path("min_margin").asDouble()));
		}
		return cases;
	}

	static int[] ints(JsonNode n) {
		return SharedModels.ints(n);
	}

	static float[] floats(JsonNode n) {
		return SharedModels.floats(n);
	}
}
