package dev.blockserve.admin;

import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;

/** A real Prometheus server (Debian's prometheus) on loopback scrapes the application and answers a query. */
class PrometheusScrapeTest extends ObservabilityTestBase {

	static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");

	@TempDir
	Path dir;

	@Test
	void prometheusScrapesTheKvUsageMetric() throws Exception {
		if (!Files.isExecutable(PROMETHEUS) && "root".equals(System.getProperty("user.name"))) {
			new ProcessBuilder("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus")
				.inheritIO().start().waitFor();
		}
		if (System.getenv("CI") == null) {
			Assumptions.assumeTrue(Files.isExecutable(PROMETHEUS),
					"skipped: Debian's prometheus is not installed (apt-get install prometheus)");
		}
		assertThat(post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 5}").statusCode()).isEqualTo(200);
		int promPort;
		try (ServerSocket s = new ServerSocket(0)) {
			promPort = s.getLocalPort();
		}
		Files.writeString(dir.resolve("prometheus.yml"), """
				global:
				  scrape_interval: 1s
				scrape_configs:
				  - job_name: blockserve
				    metrics_path: /actuator/prometheus
				    static_configs:
				      - targets: ['127.0.0.1:%d']
				""".formatted(port));
		Process prom = new ProcessBuilder(PROMETHEUS.toString(), "--config.file=" + dir.resolve("prometheus.yml"),
				"--storage.tsdb.path=" + dir.resolve("data"), "--web.listen-address=127.0.0.1:" + promPort)
			.redirectErrorStream(true).redirectOutput(dir.resolve("prometheus.log").toFile()).start();
		try {
			String query = URLEncoder.encode("blockserve_kv_cache_usage_perc{job=\"blockserve\"}", StandardCharsets.UTF_8);
			JsonNode result = null;
			long deadline = System.currentTimeMillis() + 60_000;
			while (System.currentTimeMillis() < deadline) {
				Thread.sleep(500);
				try {
					HttpResponse<String> r = http.send(HttpRequest.newBuilder(
							URI.create("http://127.0.0.1:" + promPort + "/api/v1/query?query=" + query)).build(),
							HttpResponse.BodyHandlers.ofString());
					if (r.statusCode() == 200) {
						result = JsonMapper.builder().build().readTree(r.body()).path("data").path("result");
						if (result.size() > 0) {
							break;
						}
					}
				}
				catch (java.io.IOException notUpYet) {
					// Prometheus is still starting
				}
			}
			assertThat(result).as("query result; log:\n" + Files.readString(dir.resolve("prometheus.log"))).isNotNull();
			assertThat(result.size()).isEqualTo(1);
			JsonNode sample = result.get(0);
			assertThat(sample.path("metric").path("model_name").asString()).isEqualTo("stories260K");
			double value = Double.parseDouble(sample.path("value").get(1).asString());
			assertThat(value).isBetween(0.0, 1.0);
		}
		finally {
			prom.destroy();
			if (!prom.waitFor(10, TimeUnit.SECONDS)) {
				prom.destroyForcibly();
			}
		}
	}
}
