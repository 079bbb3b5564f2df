package dev.blockserve.api;

import java.util.Map;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Per-API-key rate limits (Resilience4j rate limiters, here 3 requests per second and 1,000 tokens per
 * minute), per-request caps on sequences and tokens, and the limiters' and bulkhead's metrics in the
 * Prometheus scrape.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=512",
				"blockserve.admission.rate-limit.requests-per-second=3",
				"blockserve.admission.rate-limit.tokens-per-minute=1000",
				"blockserve.admission.max-sequences-per-request=32", "blockserve.admission.max-request-tokens=5000" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class RateLimitAndCapsTest {

	@LocalServerPort
	int port;

	RawHttp.Response complete(String key, Object prompt, int maxTokens, int n) throws Exception {
		String body = Api.JSON.writeValueAsString(Map.of("prompt", prompt, "max_tokens", maxTokens, "n", n, "temperature", 0));
		return RawHttp.request(port, "POST", "/v1/completions", key == null ? null : "Authorization: Bearer " + key + "\r\n",
				body);
	}

	@Test
	void eachKeyHasItsOwnRequestRate() throws Exception {
		int ok = 0;
		int limited = 0;
		for (int i = 0; i < 6; i++) {
			RawHttp.Response r = complete("key-a", "Hi", 1, 1);
			if (r.status() == 429) {
				limited++;
				assertThat(r.head()).containsIgnoringCase("Retry-After: 1");
				assertThat(r.body()).contains("\"type\":\"rate_limit_exceeded\"").contains("requests per second");
			}
			else {
				assertThat(r.status()).isEqualTo(200);
				ok++;
			}
		}
		assertThat(limited).as("requests of key-a over 3 per second").isPositive();
		assertThat(ok).isGreaterThanOrEqualTo(3);
		assertThat(complete("key-b", "Hi", 1, 1).status()).as("another key is not limited by key-a").isEqualTo(200);
	}

	@Test
	void tokensPerMinuteCountPromptAndMaxTokens() throws Exception {
		// each request asks for about 400 tokens (prompt + max_tokens): two fit in 1,000 a minute, a third does not
		assertThat(complete("key-t", "Hi", 400, 1).status()).isEqualTo(200);
		Thread.sleep(1100); // past the per-second window: only the token budget can refuse now
		assertThat(complete("key-t", "Hi", 400, 1).status()).isEqualTo(200);
		Thread.sleep(1100);
		RawHttp.Response refused = complete("key-t", "Hi", 400, 1);
		assertThat(refused.status()).isEqualTo(429);
		assertThat(refused.body()).contains("tokens per minute");
		assertThat(refused.head()).containsIgnoringCase("Retry-After: 60");
	}

	@Test
	void oversizedRequestsAreRefusedBeforeAnyWorkNamingTheCap() throws Exception {
		String[] many = new String[20_000];
		java.util.Arrays.fill(many, "Hi");
		RawHttp.Response r = complete("key-c", many, 1, 1);
		assertThat(r.status()).isEqualTo(400);
		assertThat(r.body()).contains("20000 sequences").contains("max-sequences-per-request");
		RawHttp.Response tokens = complete("key-d", "Hi", 400, 16);
		assertThat(tokens.status()).isEqualTo(400);
		assertThat(tokens.body()).contains("max-request-tokens");
	}

	@Test
	void limiterAndBulkheadMetricsReachPrometheus() throws Exception {
		complete("key-m", "Hi", 1, 1);
		String scrape = RawHttp.request(port, "GET", "/actuator/prometheus", null, null).body();
		assertThat(scrape).contains("resilience4j_ratelimiter_available_permissions");
		assertThat(scrape).contains("resilience4j_bulkhead_queue_capacity").contains("request-cpu");
	}
}
