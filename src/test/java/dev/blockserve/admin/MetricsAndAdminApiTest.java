package dev.blockserve.admin;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import dev.blockserve.engine.Engine;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.beans.factory.annotation.Autowired;

import static org.assertj.core.api.Assertions.assertThat;

class MetricsAndAdminApiTest extends ObservabilityTestBase {

	static final List<String> METRICS = List.of("blockserve_num_requests_running", "blockserve_num_requests_waiting",
			"blockserve_kv_cache_usage_perc", "blockserve_kv_cache_blocks", "blockserve_prefix_cache_queries_total",
			"blockserve_prefix_cache_hits_total", "blockserve_num_preemptions_total", "blockserve_prompt_tokens_total",
			"blockserve_generation_tokens_total", "blockserve_request_success_total",
			"blockserve_time_to_first_token_seconds", "blockserve_inter_token_latency_seconds",
			"blockserve_e2e_request_latency_seconds", "blockserve_request_queue_time_seconds",
			"blockserve_request_prefill_time_seconds", "blockserve_request_decode_time_seconds",
			"blockserve_iteration_tokens", "blockserve_iteration_seqs", "blockserve_model_forward_time_seconds");

	@Autowired
	Engine engine;

	static double value(String text, String series) {
		Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " ([0-9.eE+-]+)$").matcher(text);
		assertThat(m.find()).as("series %s in\n%s", series, text.length() > 3000 ? text.substring(0, 3000) : text).isTrue();
		return Double.parseDouble(m.group(1));
	}

	@Test
	void prometheusTextHasEveryMetricWithSensibleValues() throws Exception {
		String prompt = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 20, \"temperature\": 0, \"ignore_eos\": true}";
		HttpResponse<String> first = post("/v1/completions", prompt);
		assertThat(first.statusCode()).isEqualTo(200);
		assertThat(post("/v1/completions", prompt).statusCode()).isEqualTo(200); // a prefix-cache hit
		Thread.sleep(300); // let the engine publish its idle snapshot
		String text = get("/actuator/prometheus", null).body();
		for (String m : METRICS) {
			assertThat(text).as(m).contains("\n" + m);
		}
		String tag = "{model_name=\"stories260K\"}";
		assertThat(value(text, "blockserve_prompt_tokens_total" + tag)).isGreaterThanOrEqualTo(10);
		assertThat(value(text, "blockserve_generation_tokens_total" + tag)).isGreaterThanOrEqualTo(40);
		assertThat(value(text, "blockserve_request_success_total{finished_reason=\"length\",model_name=\"stories260K\"}"))
			.isGreaterThanOrEqualTo(2);
		assertThat(value(text, "blockserve_prefix_cache_hits_total" + tag)).isPositive();
		assertThat(value(text, "blockserve_prefix_cache_queries_total" + tag))
			.isGreaterThanOrEqualTo(value(text, "blockserve_prefix_cache_hits_total" + tag));
		double usage = value(text, "blockserve_kv_cache_usage_perc" + tag);
		assertThat(usage).isBetween(0.0, 1.0);
		double used = value(text, "blockserve_kv_cache_blocks{model_name=\"stories260K\",state=\"used\"}");
		double cached = value(text, "blockserve_kv_cache_blocks{model_name=\"stories260K\",state=\"cached\"}");
		double free = value(text, "blockserve_kv_cache_blocks{model_name=\"stories260K\",state=\"free\"}");
		assertThat(used + cached + free).isEqualTo(2000);
		assertThat(cached).as("blocks of finished requests stay cached").isPositive();
		assertThat(value(text, "blockserve_time_to_first_token_seconds_count" + tag)).isGreaterThanOrEqualTo(2);
		assertThat(value(text, "blockserve_inter_token_latency_seconds_count" + tag)).isGreaterThanOrEqualTo(38);
		assertThat(text).contains("blockserve_time_to_first_token_seconds_bucket{model_name=\"stories260K\",le=\"0.04\"}");
		assertThat(value(text, "blockserve_iteration_tokens_count" + tag)).isGreaterThanOrEqualTo(40);
		// one forward pass a step, each inside its step's tokens' latencies
		assertThat(value(text, "blockserve_model_forward_time_seconds_count" + tag))
			.isEqualTo(value(text, "blockserve_iteration_tokens_count" + tag));
		assertThat(value(text, "blockserve_model_forward_time_seconds_sum" + tag)).isPositive()
			.isLessThanOrEqualTo(value(text, "blockserve_e2e_request_latency_seconds_sum" + tag));
		// vLLM's per-request histograms and cache_config_info
		assertThat(value(text, "blockserve_request_prompt_tokens_count" + tag)).isGreaterThanOrEqualTo(2);
		assertThat(value(text, "blockserve_request_generation_tokens_sum" + tag)).isGreaterThanOrEqualTo(40);
		assertThat(value(text, "blockserve_request_params_max_tokens_sum" + tag)).isGreaterThanOrEqualTo(40);
		assertThat(value(text, "blockserve_request_params_n_count" + tag)).isGreaterThanOrEqualTo(2);
		assertThat(value(text, "blockserve_request_inference_time_seconds_count" + tag)).isGreaterThanOrEqualTo(2);
		assertThat(text).containsPattern("blockserve_cache_config_info\\{block_size=\"4\",cache_dtype=\"float32\",device=\"cpu\","
				+ "enable_prefix_caching=\"true\",model_name=\"stories260K\",num_blocks=\"2000\",sliding_window=\"0\"\\} 1");
		// /metrics serves the same scrape where vLLM and llama.cpp serve it, as Prometheus text
		HttpResponse<String> plain = get("/metrics", null);
		assertThat(plain.statusCode()).isEqualTo(200);
		assertThat(plain.headers().firstValue("Content-Type").orElse("")).startsWith("text/plain");
		assertThat(plain.body()).contains("blockserve_kv_cache_usage_perc" + tag);
	}

	@Test
	void versionAndModelById() throws Exception {
		assertThat(get("/version", null).body()).matches("\\{\"version\":\"\\d+\\.\\d+\\.\\d+.*\"\\}");
		HttpResponse<String> model = get("/v1/models/stories260K", null);
		assertThat(model.statusCode()).isEqualTo(200);
		assertThat(model.body()).contains("\"id\":\"stories260K\"").contains("\"max_model_len\"");
		HttpResponse<String> missing = get("/v1/models/gpt-4", null);
		assertThat(missing.statusCode()).isEqualTo(404);
		assertThat(missing.body()).contains("model_not_found").contains("This server serves `stories260K`");
	}

	@Test
	void actuatorExposesOnlyHealthInfoMetricsPrometheus() throws Exception {
		assertThat(get("/actuator/health", null).statusCode()).isEqualTo(200);
		assertThat(get("/actuator/info", null).statusCode()).isEqualTo(200);
		assertThat(get("/actuator/metrics", null).statusCode()).isEqualTo(200);
		for (String closed : List.of("/actuator/env", "/actuator/beans", "/actuator/configprops", "/actuator/heapdump",
				"/actuator/threaddump", "/actuator/loggers", "/actuator/shutdown")) {
			assertThat(get(closed, null).statusCode()).as(closed).isEqualTo(404);
		}
	}

	@Test
	void adminNeedsItsKey() throws Exception {
		assertThat(get("/admin/api/blocks", null).statusCode()).isEqualTo(401);
		assertThat(get("/admin/api/blocks", "wrong").statusCode()).isEqualTo(401);
		assertThat(get("/admin/api/blocks", "admin-secret").statusCode()).isEqualTo(200);
		// a key in the URL is not accepted (it would end up in logs); the page itself holds no data
		assertThat(get("/admin/api/blocks?key=admin-secret", null).statusCode()).isEqualTo(401);
		assertThat(get("/admin", null).body()).contains("<canvas id=\"map\"");
		// the page posts the key once and gets an HttpOnly session cookie for its fetches and EventSource
		HttpResponse<String> session = http.send(HttpRequest.newBuilder(URI.create(url("/admin/api/session")))
			.header("Authorization", "Bearer admin-secret")
			.POST(HttpRequest.BodyPublishers.noBody())
			.build(), HttpResponse.BodyHandlers.ofString());
		assertThat(session.statusCode()).isEqualTo(204);
		String cookie = session.headers().firstValue("Set-Cookie").orElseThrow();
		assertThat(cookie).containsIgnoringCase("HttpOnly").contains("SameSite=Strict").startsWith("blockserve_admin=");
		String pair = cookie.substring(0, cookie.indexOf(';'));
		assertThat(http.send(HttpRequest.newBuilder(URI.create(url("/admin/api/blocks"))).header("Cookie", pair).build(),
				HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(200);
		assertThat(http.send(HttpRequest.newBuilder(URI.create(url("/admin/api/blocks")))
			.header("Cookie", "blockserve_admin=forged")
			.build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(401);
		assertThat(http.send(HttpRequest.newBuilder(URI.create(url("/admin/api/session")))
			.POST(HttpRequest.BodyPublishers.noBody())
			.build(), HttpResponse.BodyHandlers.ofString()).statusCode()).isEqualTo(401);
		// the OpenAI API has no keys configured here, so it stays open
		assertThat(get("/v1/models", null).statusCode()).isEqualTo(200);
	}

	@Test
	void snapshotShowsBlocksSharedBySiblingsWithReferenceCountTwo() throws Exception {
		startLongRequest(2, 400);
		JsonNode doc = null;
		long deadline = System.currentTimeMillis() + 20_000;
		while (System.currentTimeMillis() < deadline) {
			doc = JsonMapper.builder().build().readTree(get("/admin/api/blocks", "admin-secret").body());
			if (doc.path("requests").size() == 2 && doc.path("refCounts").size() > 0) {
				break;
			}
			Thread.sleep(20);
		}
		assertThat(doc.path("requests").size()).as("two sibling sequences running").isEqualTo(2);
		// the cache's type and size: 2000 blocks of 4 tokens x 5 layers x 4 KV heads x 8 x 2 (K, V) x 4 bytes
		assertThat(doc.path("cacheDtype").asText()).isEqualTo("float32");
		assertThat(doc.path("cacheBytes").asLong()).isEqualTo(2000L * 4 * 5 * 4 * 8 * 2 * 4);
		JsonNode a = doc.path("requests").get(0).path("blocks");
		JsonNode b = doc.path("requests").get(1).path("blocks");
		int shared = 0;
		for (JsonNode x : a) {
			for (JsonNode y : b) {
				if (x.asInt() == y.asInt()) {
					shared++;
					assertThat(doc.path("refCounts").path(x.asString()).asInt()).as("block %s", x).isEqualTo(2);
					assertThat(doc.path("states").asString().charAt(x.asInt())).isEqualTo('2');
				}
			}
		}
		// 9 prompt tokens in blocks of 4: the two full prompt blocks are shared by both siblings
		assertThat(shared).isGreaterThanOrEqualTo(2);
		assertThat(doc.path("refCounts").size()).isEqualTo(shared);
		String states = doc.path("states").asString();
		assertThat(states).hasSize(2000);
		assertThat(states.chars().filter(c -> c == '2').count()).isEqualTo(doc.path("used").asLong());
		assertThat(doc.path("requests").get(0).path("promptTokens").asInt()).isEqualTo(11);
		engine.abort(doc.path("requests").get(0).path("requestId").asLong());
	}
}
