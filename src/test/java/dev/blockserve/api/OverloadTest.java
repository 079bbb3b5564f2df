package dev.blockserve.api;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.engine.Engine;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * 500 streaming clients at once against 64 running sequences and a waiting queue of 64: the excess get
 * 429 with Retry-After at once, every admitted request streams its exact golden text, the admitted
 * requests' time to first token stays bounded, memory stays bounded, and no block is held afterwards.
 * Prints its figures (docs/reliability.md quotes them).
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=2048",
				"blockserve.admission.max-waiting-requests=64", "blockserve.scheduler.max-num-seqs=64" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class OverloadTest {

	static final int CLIENTS = 500;

	@LocalServerPort
	int port;

	@Autowired
	Engine engine;

	record Outcome(int status, String retryAfter, String text, long ttftMillis, long totalMillis) {
	}

	@Test
	void theExcessGets429AndEveryAdmittedRequestCompletesExactly() throws Exception {
		List<GoldenCase> cases = SharedModels.golden("stories260K");
		HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build();
		long rssBefore = rssKb();
		long heapBefore = heapUsedMb();
		List<CompletableFuture<Outcome>> all = new ArrayList<>();
		for (int i = 0; i < CLIENTS; i++) {
			GoldenCase c = cases.get(i % cases.size());
			String body = Api.JSON.writeValueAsString(Map.of("prompt", c.promptText(), "max_tokens", 96, "temperature", 0,
					"stream", true));
			long t0 = System.nanoTime();
			all.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
				.timeout(Duration.ofSeconds(120))
				.header("Content-Type", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString(body))
				.build(), HttpResponse.BodyHandlers.ofLines()).thenApply(r -> read(r, t0)));
		}
		int admitted = 0;
		int refused = 0;
		List<Long> ttft = new ArrayList<>();
		for (int i = 0; i < CLIENTS; i++) {
			Outcome o = all.get(i).get();
			if (o.status() == 429) {
				refused++;
				assertThat(o.retryAfter()).as("Retry-After of a 429").isNotNull();
				assertThat(o.text()).contains("rate_limit_exceeded");
				continue;
			}
			assertThat(o.status()).as(o.text()).isEqualTo(200);
			admitted++;
			ttft.add(o.ttftMillis());
			assertThat(o.text()).as("client %d", i).isEqualTo(cases.get(i % cases.size()).completionText());
		}
		long rssAfter = rssKb();
		long heapAfter = heapUsedMb();
		ttft.sort(null);
		long p50 = ttft.get(ttft.size() / 2);
		long p99 = ttft.get(Math.min(ttft.size() - 1, (int) Math.ceil(ttft.size() * 0.99) - 1));
		System.out.printf("OVERLOAD clients=%d admitted=%d refused429=%d ttft_p50_ms=%d ttft_p99_ms=%d "
				+ "rss_before_mb=%d rss_after_mb=%d heap_before_mb=%d heap_after_mb=%d%n", CLIENTS, admitted, refused, p50, p99,
				rssBefore / 1024, rssAfter / 1024, heapBefore, heapAfter);
		assertThat(refused).as("clients refused with 429").isPositive();
		assertThat(admitted).as("clients admitted").isGreaterThanOrEqualTo(64);
		assertThat(p99).as("TTFT p99 of admitted requests (ms)").isLessThan(60_000);
		assertThat(rssAfter - rssBefore).as("RSS growth (kB)").isLessThan(1024 * 1024);
		assertThat(EngineProbes.usedBlocks(engine)).isZero();
		EngineProbes.checkInvariants(engine);
	}

	static Outcome read(HttpResponse<Stream<String>> r, long t0) {
		StringBuilder text = new StringBuilder();
		long first = -1;
		if (r.statusCode() != 200) {
			r.body().forEach(text::append);
			return new Outcome(r.statusCode(), r.headers().firstValue("Retry-After").orElse(null), text.toString(), -1, 0);
		}
		for (String line : (Iterable<String>) r.body()::iterator) {
			if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
				continue;
			}
			JsonNode chunk = Api.JSON.readTree(line.substring(6));
			String t = chunk.path("choices").path(0).path("text").asString("");
			if (first < 0 && !t.isEmpty()) {
				first = System.nanoTime();
			}
			text.append(t);
		}
		long now = System.nanoTime();
		return new Outcome(200, null, text.toString(), ((first < 0 ? now : first) - t0) / 1_000_000, (now - t0) / 1_000_000);
	}

	static long rssKb() throws Exception {
		for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
			if (l.startsWith("VmRSS:")) {
				return Long.parseLong(l.replaceAll("[^0-9]", ""));
			}
		}
		return 0;
	}

	static long heapUsedMb() {
		Runtime r = Runtime.getRuntime();
		return (r.totalMemory() - r.freeMemory()) / (1024 * 1024);
	}
}
