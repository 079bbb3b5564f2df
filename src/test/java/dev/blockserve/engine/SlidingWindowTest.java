package dev.blockserve.engine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.TestDevice;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A long Mistral sequence (window 8, block size 16) holds at most 2 blocks at every step after its
 * prompt: the KV manager frees what fell out of the window. Its 488 new tokens match the independent
 * numpy reference ({@code ../shared/tools/hf_llama_ref.py}), run here when python3 with numpy is there
 * (CI installs it); elsewhere that half is skipped with the reason. The same with speculative decoding:
 * drafts past the window's end take no block the bound does not allow, and the ids stay the reference's.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class SlidingWindowTest {

	static final int[] PROMPT = { 1, 40, 47, 50, 60, 70, 80, 90, 100, 110, 120, 130 };

	static final int NEW_TOKENS = 488; // 500 tokens in all, within the model's 512

	/** Collects one request's tokens. */
	static final class Ids implements RequestOutput {

		final List<Integer> ids = new ArrayList<>();

		boolean done;

		@Override
		public void event(GenerationEvent e) {
			for (int t : e.tokenIds()) {
				ids.add(t);
			}
		}

		@Override
		public void complete() {
			done = true;
		}

		@Override
		public void fail(EngineException e) {
			throw e;
		}
	}

	private static List<Integer> reference;

	@org.junit.jupiter.params.ParameterizedTest(name = "speculative={0}")
	@org.junit.jupiter.params.provider.ValueSource(booleans = { false, true })
	void aLongMistralSequenceHoldsAtMostTwoBlocksAndMatchesTheReference(boolean speculative) throws Exception {
		Path dir = SharedModels.dir("tiny-random-mistral");
		List<Integer> ids;
		try (Backend backend = TestDevice.backend(); LlamaModel m = LlamaModel.load(dir, backend, 0);
				KvCacheMemory cache = m.newKvCache(64, 16)) {
			assertThat(m.config().features().maxWindow()).isEqualTo(8);
			KvCacheManager kv = new KvCacheManager(new BlockPool(64, 16, 5), false, "mistral", 8);
			Ids out = new Ids();
			int maxHeld = 0;
			int steps = 0;
			SchedulerConfig config = SchedulerConfig.cpuDefaults();
			if (speculative) {
				config = config.withSpeculative(new dev.blockserve.scheduler.SpeculativeConfig(4, 1, 3, 1));
			}
			try (EngineCore core = new EngineCore(m, cache, kv, config, null, GenerationConfig.read(dir, m.config()), null)) {
				core.add(1, PROMPT, SamplingParams.greedy(NEW_TOKENS).toBuilder().ignoreEos(true).build(), 0, System.nanoTime(), 0,
						out);
				while (core.hasWork()) {
					core.step();
					steps++;
					int held = kv.pool().numBlocks() - kv.pool().numFree();
					if (!out.ids.isEmpty() && !out.done) {
						maxHeld = Math.max(maxHeld, held);
					}
					kv.checkInvariants();
				}
			}
			ids = out.ids;
			assertThat(ids).hasSize(NEW_TOKENS);
			if (speculative) {
				assertThat(steps).as("steps while speculating (accepted drafts save steps)").isLessThan(NEW_TOKENS);
			}
			else {
				assertThat(steps).isGreaterThanOrEqualTo(NEW_TOKENS);
			}
			assertThat(maxHeld).as("blocks held at any step after the prompt (window 8, block size 16)").isLessThanOrEqualTo(2);
			assertThat(kv.pool().numFree()).isEqualTo(64);
		}
		if (reference == null) {
			reference = reference(dir);
		}
		assertThat(ids).as("ids against hf_llama_ref.py").isEqualTo(reference);
	}

	/** The numpy reference's greedy ids, or a skip when python3 with numpy is not available. */
	static List<Integer> reference(Path dir) throws Exception {
		Path tool = SharedModels.ROOT.resolve("../tools/hf_llama_ref.py").normalize();
		boolean numpy = tool.toFile().isFile() && new ProcessBuilder("python3", "-c", "import numpy").start().waitFor() == 0;
		if (!numpy && "true".equals(System.getenv("CI"))) {
			throw new AssertionError("CI must have python3 with numpy (.ci/run installs python3-numpy)");
		}
		Assumptions.assumeTrue(numpy, "python3 with numpy or " + tool + " missing: the reference comparison is skipped");
		StringBuilder prompt = new StringBuilder();
		for (int t : PROMPT) {
			prompt.append(prompt.length() > 0 ? "," : "").append(t);
		}
		Process p = new ProcessBuilder("python3", tool.toString(), dir.toString(), prompt.toString(),
				Integer.toString(NEW_TOKENS)).redirectErrorStream(true).start();
		String output = new String(p.getInputStream().readAllBytes());
		assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
		assertThat(p.exitValue()).as(output).isZero();
		String first = output.lines().findFirst().orElseThrow().trim();
		List<Integer> ids = new ArrayList<>();
		for (String x : first.substring(1, first.length() - 1).split(",")) {
			ids.add(Integer.parseInt(x.trim()));
		}
		return ids;
	}
}
