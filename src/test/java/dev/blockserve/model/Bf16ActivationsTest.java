package dev.blockserve.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.WeightType;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.support.DraftCounter;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * BF16 activations ({@code blockserve.bf16-activations}): BF16 matrices take the activations rounded to
 * BF16 and the CPU's BF16 dot product, as llama.cpp does. Not exact, so checked by tolerance against the
 * exact run on the same weights (each shared model's matrices rounded to BF16 at load; that exact run is
 * what Bf16GoldenTest holds to a reference): all cases' prompts are prefilled in one step and decoded
 * together, and the first-step logits must stay near the exact run's and differ from them somewhere (the
 * mode ran), the first greedy id must agree wherever the exact run's top two logits are further apart than
 * the logits moved, and at least half the cases keep all 8 greedy ids (measured: 40 of 45 cases over the
 * five models; a flip came from a top-two gap of 0.007). Speculative decoding keeps the mode's own ids:
 * below 24 rows a row's product does not depend on the rows beside it, so a step verifying drafts computes
 * each row as a plain decode step would.
 * Where the CPU has no AVX-512 BF16 the mode is refused and nothing changes, checked on every CPU by
 * forcing the AVX2 level.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class Bf16ActivationsTest {

	/** First-step logits of the mode against the exact run on the same BF16 matrices: measured up to 0.33. */
	static final float LOGIT_TOLERANCE = 0.5f;

	static List<String> models() {
		return GoldenTest.MODELS;
	}

	@ParameterizedTest
	@MethodSource("models")
	void bf16ActivationsStayCloseToTheGolden(String model) {
		try (CpuBackend backend = withBf16Dot()) {
			List<GoldenCase> cases = SharedModels.golden(model);
			List<OfflineGenerator.Result> exact = run(model, backend, cases);
			assertThat(backend.bf16Activations(true)).isTrue();
			List<OfflineGenerator.Result> fast;
			try {
				fast = run(model, backend, cases);
			} finally {
				backend.bf16Activations(false);
			}
			int sameIds = 0;
			double worst = 0;
			boolean differs = false;
			for (int i = 0; i < cases.size(); i++) {
				float[] f = fast.get(i).firstLogits(), e = exact.get(i).firstLogits();
				GoldenTest.assertLogitsClose(f, e, i, LOGIT_TOLERANCE);
				double caseWorst = 0;
				for (int j = 0; j < f.length; j++) {
					caseWorst = Math.max(caseWorst, Math.abs(f[j] - e[j]));
					differs |= f[j] != e[j];
				}
				worst = Math.max(worst, caseWorst);
				// the first greedy id may flip only where the exact run's top two are closer than the logits moved
				if (topTwoGap(e) > 2 * caseWorst) {
					assertThat(fast.get(i).tokens()[0]).as("first greedy id of case %d", i).isEqualTo(exact.get(i).tokens()[0]);
				}
				sameIds += Arrays.equals(fast.get(i).tokens(), exact.get(i).tokens()) ? 1 : 0;
			}
			assertThat(sameIds).as("cases whose 8 greedy ids all equal the exact run's").isGreaterThanOrEqualTo(
					(cases.size() + 1) / 2);
			System.out.printf("%s: BF16 activations, worst |logit - exact| %.4f, %d of %d cases with every id of the exact "
					+ "run%n", model, worst, sameIds, cases.size());
			assertThat(differs).as("BF16 activations changed no logit: the mode did not run").isTrue();
		}
	}

	@ParameterizedTest
	@MethodSource("models")
	void speculationKeepsTheModesIds(String model) {
		try (CpuBackend backend = withBf16Dot()) {
			List<GoldenCase> cases = SharedModels.golden(model);
			assertThat(backend.bf16Activations(true)).isTrue();
			try {
				DraftCounter drafts = new DraftCounter();
				List<OfflineGenerator.Result> plain = oneAtATime(model, backend, cases, null);
				List<OfflineGenerator.Result> speculating = oneAtATime(model, backend, cases, drafts);
				for (int i = 0; i < cases.size(); i++) {
					assertThat(speculating.get(i).tokens()).as("ids of case %d while speculating", i)
						.containsExactly(plain.get(i).tokens());
				}
				assertThat(drafts.accepted).as("draft tokens accepted").isPositive();
			} finally {
				backend.bf16Activations(false);
			}
		}
	}

	/** Each case alone, 24 greedy ids, with prompt-lookup drafts verified in the step when {@code drafts} is given. */
	static List<OfflineGenerator.Result> oneAtATime(String model, CpuBackend backend, List<GoldenCase> cases,
			DraftCounter drafts) {
		try (LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0, WeightType.BF16)) {
			int blocks = (m.maxPositions() + 15) / 16;
			try (KvCacheMemory cache = m.newKvCache(blocks, 16)) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, 16), false, model,
						m.config().features().maxWindow());
				List<OfflineGenerator.Result> out = new ArrayList<>();
				try (OfflineGenerator gen = drafts == null ? GoldenTest.generator(model, m, cache, kv, Integer.MAX_VALUE)
						: SpeculativeGoldenTest.generator(model, m, cache, kv, Integer.MAX_VALUE, drafts)) {
					for (GoldenCase c : cases) {
						out.addAll(gen.generate(List.of(c.promptIds()), GoldenTest.params(model, 24)));
					}
				}
				return out;
			}
		}
	}

	/** The CPU backend at its best level; the test is skipped (with the reason) where that has no BF16 dot product. */
	static CpuBackend withBf16Dot() {
		CpuBackend backend = new CpuBackend(0);
		if (!CpuBackend.supportedLevels().contains("avx512bf16")) {
			String level = backend.level();
			backend.close();
			Assumptions.abort("this CPU has no AVX-512 BF16 (" + level + ")");
		}
		return backend;
	}

	@Test
	void aLevelWithoutBf16DotProductsRefusesTheModeAndStaysExact() {
		String model = "stories260K";
		List<GoldenCase> cases = SharedModels.golden(model);
		try (CpuBackend backend = new CpuBackend(0, "avx2")) {
			List<OfflineGenerator.Result> before = run(model, backend, cases);
			assertThat(backend.bf16Activations(true)).isFalse();
			List<OfflineGenerator.Result> after = run(model, backend, cases);
			for (int i = 0; i < cases.size(); i++) {
				assertThat(after.get(i).firstLogits()).containsExactly(before.get(i).firstLogits());
				assertThat(after.get(i).tokens()).containsExactly(before.get(i).tokens());
			}
		} finally {
			new CpuBackend(0, "auto").close();
		}
	}

	static double topTwoGap(float[] logits) {
		float[] l = logits.clone();
		Arrays.sort(l);
		return l[l.length - 1] - l[l.length - 2];
	}

	/** Every case greedily, all prompts in one prefill step, the model's matrices rounded to BF16 at load. */
	static List<OfflineGenerator.Result> run(String model, CpuBackend backend, List<GoldenCase> cases) {
		int blockSize = 16;
		try (LlamaModel m = LlamaModel.load(SharedModels.dir(model), backend, 0, WeightType.BF16)) {
			int blocks = cases.size() * ((m.maxPositions() + blockSize - 1) / blockSize);
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize)) {
				KvCacheManager kv = new KvCacheManager(new BlockPool(blocks, blockSize), false, model,
						m.config().features().maxWindow());
				try (OfflineGenerator gen = GoldenTest.generator(model, m, cache, kv, Integer.MAX_VALUE)) {
					return new ArrayList<>(gen.generate(cases.stream().map(GoldenCase::promptIds).toList(),
							GoldenTest.params(model, 8)));
				}
			}
		}
	}
}
