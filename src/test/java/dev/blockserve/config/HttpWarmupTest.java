package dev.blockserve.config;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.api.Api;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.extension.ExtendWith;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The start-up requests through the server's own port: they run (with an API key configured, which they
 * must present, and a rate limit of one request a second, which they are not held to), and leave no trace in what operators read: no requests, tokens or prefix-cache lookups in
 * the engine's metrics or the admin API, no HTTP server observation. A client's request that copies the
 * warm-up header with any other value is counted as usual. While the warm-up runs /health says "starting".
 */
@ExtendWith(OutputCaptureExtension.class)
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=96",
				"blockserve.api.api-keys=warmup-test-key", "blockserve.admission.rate-limit.requests-per-second=1" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class HttpWarmupTest {

	static final String KEY = "Authorization: Bearer warmup-test-key\r\n";

	@LocalServerPort
	int port;

	@Autowired
	Api api;

	static double sum(String scrape, String name, String labelFilter) {
		double total = 0;
		for (String line : scrape.lines().toList()) {
			if (line.startsWith(name + "{") && line.contains(labelFilter)) {
				total += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
			}
		}
		return total;
	}

	@Test
	void theWarmupRanAndLeftNothingInTheMetrics(CapturedOutput output) throws Exception {
		assertThat(output.getAll()).contains("Warmed up the HTTP path in").doesNotContain("HTTP warm-up failed");
		String scrape = RawHttp.request(port, "GET", "/metrics", null, null).body();
		assertThat(sum(scrape, "blockserve_request_success_total", "")).isZero();
		assertThat(sum(scrape, "blockserve_generation_tokens_total", "")).isZero();
		assertThat(sum(scrape, "blockserve_prompt_tokens_total", "")).isZero();
		assertThat(sum(scrape, "blockserve_prefix_cache_queries_total", "")).isZero();
		assertThat(sum(scrape, "http_server_requests_seconds_count", "/v1/")).isZero();
		String admin = RawHttp.request(port, "GET", "/admin/api/blocks", null, null).body();
		assertThat(dev.blockserve.api.Sse.JSON.readTree(admin).path("generatedTokens").asLong()).isZero();

		// a client that sends the header with its own value is a client like any other
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/completions", KEY + dev.blockserve.api.WarmupRequests.HEADER + ": guess\r\n",
				"{\"prompt\":\"Once\",\"max_tokens\":3,\"ignore_eos\":true}");
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		String after = RawHttp.request(port, "GET", "/metrics", null, null).body();
		assertThat(sum(after, "http_server_requests_seconds_count", "/v1/completions")).isEqualTo(1);
		assertThat(sum(after, "blockserve_generation_tokens_total", "")).isEqualTo(3);
		assertThat(sum(after, "blockserve_request_success_total", "")).isEqualTo(1);
	}

	@Test
	void healthSaysStartingWhileTheWarmupRuns() throws Exception {
		api.starting("warming up the HTTP path");
		try {
			RawHttp.Response r = RawHttp.request(port, "GET", "/health", null, null);
			assertThat(r.status()).isEqualTo(503);
			assertThat(r.body()).contains("\"status\":\"starting\"").contains("warming up the HTTP path");
		}
		finally {
			api.starting(null);
		}
		assertThat(RawHttp.request(port, "GET", "/health", null, null).status()).isEqualTo(200);
	}
}
