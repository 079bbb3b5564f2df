package dev.blockserve.api;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.openai.core.http.StreamResponse;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;
import org.springframework.boot.test.context.SpringBootTest;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The server with speculative decoding on (blockserve.speculative.*): every golden prompt, sent at once and
 * streamed, gives its golden text through the OpenAI SDK, with several tokens arriving from one step; the
 * Prometheus page counts drafted and accepted tokens, and no block is left held.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=1024",
				"blockserve.speculative.num-tokens=4", "blockserve.speculative.prompt-lookup-min=1",
				"blockserve.speculative.max-batch=16" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SpeculativeServingTest extends OpenAiServerTest {

	double counter(String name) throws Exception {
		String page = HttpClient.newHttpClient()
			.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
					HttpResponse.BodyHandlers.ofString())
			.body();
		Matcher m = Pattern.compile("(?m)^" + name + "\\{[^}]*\\} ([0-9.eE+]+)$").matcher(page);
		assertThat(m.find()).as(name + " on the metrics page").isTrue();
		return Double.parseDouble(m.group(1));
	}

	@Test
	void goldenTextsStreamedAtOnceWithDraftsCounted() throws Exception {
		double draftedBefore = counter("blockserve_spec_decode_draft_tokens_total");
		double acceptedBefore = counter("blockserve_spec_decode_accepted_tokens_total");
		List<GoldenCase> cases = SharedModels.golden("stories260K");
		List<CompletableFuture<List<Completion>>> calls = new ArrayList<>();
		for (GoldenCase c : cases) {
			calls.add(CompletableFuture.supplyAsync(() -> {
				try (StreamResponse<Completion> s = client.completions()
					.createStreaming(CompletionCreateParams.builder().model("stories260K").prompt(c.promptText()).maxTokens(96)
						.temperature(0.0).build())) {
					return s.stream().toList();
				}
			}));
		}
		for (int i = 0; i < cases.size(); i++) {
			StringBuilder text = new StringBuilder();
			calls.get(i).get().forEach(ch -> ch.choices().forEach(x -> text.append(x.text())));
			assertThat(text.toString()).as("prompt '%s'", cases.get(i).promptText()).isEqualTo(cases.get(i).completionText());
		}
		double drafted = counter("blockserve_spec_decode_draft_tokens_total") - draftedBefore;
		double accepted = counter("blockserve_spec_decode_accepted_tokens_total") - acceptedBefore;
		assertThat(drafted).as("drafted tokens").isPositive();
		assertThat(accepted).as("accepted tokens").isPositive().isLessThanOrEqualTo(drafted);
		// the dashboard's data carries the same totals (published by the engine a few times a second)
		tools.jackson.databind.JsonNode admin = null;
		for (int i = 0; i < 50 && (admin == null || admin.path("draftTokens").asLong() < drafted); i++) {
			Thread.sleep(100);
			admin = Api.JSON.readTree(HttpClient.newHttpClient()
				.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/admin/api/blocks")).build(),
						HttpResponse.BodyHandlers.ofString())
				.body());
		}
		assertThat(admin.path("draftTokens").asLong()).as("dashboard drafted").isGreaterThanOrEqualTo((long) drafted);
		assertThat(admin.path("acceptedDraftTokens").asLong()).as("dashboard kept").isPositive()
			.isLessThanOrEqualTo(admin.path("draftTokens").asLong());
		assertThat(EngineProbes.usedBlocks(engine)).isZero();
		EngineProbes.checkInvariants(engine);
	}

	/**
	 * Seeded sampling with n = 2 through the API, speculating, against the engine without speculation: each
	 * choice is the output of its own seed (choice c: seed + c), token for token.
	 */
	@Test
	void seededChoicesAreTheEngineOutputsWithoutSpeculation() throws Exception {
		String prompt = "Tim had a red ball. He liked his ball. Tim had a red ball.";
		double draftedBefore = counter("blockserve_spec_decode_draft_tokens_total");
		Completion r = client.completions().create(CompletionCreateParams.builder().model("stories260K").prompt(prompt)
			.maxTokens(60).temperature(0.8).seed(7L).n(2L)
			.putAdditionalBodyProperty("ignore_eos", com.openai.core.JsonValue.from(true)).build());
		assertThat(counter("blockserve_spec_decode_draft_tokens_total") - draftedBefore).as("drafted tokens").isPositive();
		var dir = SharedModels.dir("stories260K");
		try (var backend = new dev.blockserve.backend.CpuBackend(1);
				var m = dev.blockserve.model.LlamaModel.load(dir, backend, 0);
				var tok = dev.blockserve.model.TextTokenizer.load(dir); var cache = m.newKvCache(64, 16);
				var gen = new dev.blockserve.engine.OfflineGenerator(m, cache,
						new dev.blockserve.kvcache.KvCacheManager(new dev.blockserve.kvcache.BlockPool(64, 16), false, "ref", 0),
						dev.blockserve.engine.OfflineGenerator.batchConfig(512), tok,
						dev.blockserve.model.GenerationConfig.read(dir, m.config()))) {
			int[] ids = tok.encode(prompt, true);
			for (int c = 0; c < 2; c++) {
				var p = dev.blockserve.engine.SamplingParams.builder().maxTokens(60).temperature(0.8).seed(7L + c).ignoreEos(true)
					.build();
				String expected = tok.decodeContinuation(ids, gen.generate(List.of(ids), p).get(0).tokens());
				final int index = c;
				String got = r.choices().stream().filter(x -> x.index() == index).findFirst().orElseThrow().text();
				assertThat(got).as("choice %d", c).isEqualTo(expected);
			}
		}
		assertThat(EngineProbes.usedBlocks(engine)).isZero();
	}
}
