package dev.blockserve.admin;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import dev.blockserve.BlockserveApplication;
import org.junit.jupiter.api.condition.EnabledIf;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

/**
 * One server for the observability tests (same properties, so Spring reuses the context); it speculates,
 * so the dashboard's and the metrics' speculation figures have something to show.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=2000",
				"blockserve.kv-cache.block-size=4", "blockserve.admin.api-key=admin-secret",
				"blockserve.admin.stream-interval=100ms", "blockserve.speculative.num-tokens=3",
				"blockserve.speculative.max-batch=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
abstract class ObservabilityTestBase {

	@LocalServerPort
	int port;

	final HttpClient http = HttpClient.newHttpClient();

	String url(String path) {
		return "http://127.0.0.1:" + port + path;
	}

	HttpResponse<String> get(String path, String bearer) throws Exception {
		HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url(path))).timeout(java.time.Duration.ofSeconds(60));
		if (bearer != null) {
			b.header("Authorization", "Bearer " + bearer);
		}
		return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
	}

	HttpResponse<String> post(String path, String json) throws Exception {
		return http.send(HttpRequest.newBuilder(URI.create(url(path))).timeout(java.time.Duration.ofSeconds(60)).header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
	}

	/** Starts a long generation in the background (n siblings share the prompt's blocks). */
	void startLongRequest(int n, int maxTokens) {
		http.sendAsync(HttpRequest.newBuilder(URI.create(url("/v1/completions"))).header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Once upon a time there was a little dog\", \"max_tokens\": "
					+ maxTokens + ", \"n\": " + n + ", \"ignore_eos\": true, \"temperature\": 0.7, \"seed\": 1}"))
			.build(), HttpResponse.BodyHandlers.ofString());
	}
}
