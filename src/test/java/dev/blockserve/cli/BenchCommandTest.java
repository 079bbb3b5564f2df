package dev.blockserve.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import dev.blockserve.support.Scrape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code blockserve bench} against the real server: its JSON result has vLLM's keys, and its token and
 * request counts agree with the server's own Prometheus counters over the same run.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=1024" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class BenchCommandTest {

	@LocalServerPort
	int port;


	@Test
	void resultsHaveVllmsKeysAndAgreeWithThePrometheusCounters() throws Exception {
		String before = RawHttp.request(port, "GET", "/metrics", null, null).body();
		StringWriter out = new StringWriter();
		StringWriter err = new StringWriter();
		int code = Cli.run(new String[] { "bench", "--base-url", "http://127.0.0.1:" + port + "/v1", "--num-prompts", "12",
				"--max-concurrency", "4", "--random-input-len", "20", "--random-output-len", "16", "--ignore-eos",
				"--random-token-range", "3:500", "--json" }, a -> {
				}, new PrintWriter(out, true), new PrintWriter(err, true));
		assertThat(code).as(err.toString()).isZero();
		String[] lines = out.toString().strip().split("\n");
		JsonNode r = BenchCommand.JSON.readTree(lines[lines.length - 1]);
		for (String key : new String[] { "completed", "total_input_tokens", "total_output_tokens", "request_throughput",
				"output_throughput", "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_itl_ms", "median_itl_ms",
				"p99_itl_ms", "mean_e2el_ms", "median_e2el_ms", "p99_e2el_ms" }) {
			assertThat(r.has(key)).as(key).isTrue();
		}
		assertThat(r.path("completed").asInt()).isEqualTo(12);
		assertThat(r.path("model_id").asString()).isEqualTo("stories260K");
		assertThat(r.path("total_output_tokens").asLong()).isEqualTo(12 * 16);
		assertThat(r.path("median_ttft_ms").asDouble()).isPositive().isLessThanOrEqualTo(r.path("median_e2el_ms").asDouble());
		String after = RawHttp.request(port, "GET", "/metrics", null, null).body();
		double generated = Scrape.sum(after, "blockserve_generation_tokens_total") - Scrape.sum(before, "blockserve_generation_tokens_total");
		double prompt = Scrape.sum(after, "blockserve_prompt_tokens_total") - Scrape.sum(before, "blockserve_prompt_tokens_total");
		double finished = Scrape.sum(after, "blockserve_request_success_total") - Scrape.sum(before, "blockserve_request_success_total");
		assertThat(r.path("total_output_tokens").asDouble()).isCloseTo(generated, org.assertj.core.data.Percentage.withPercentage(5));
		assertThat(r.path("total_input_tokens").asDouble()).isCloseTo(prompt, org.assertj.core.data.Percentage.withPercentage(5));
		assertThat(finished).isEqualTo(12);
	}

	/** vLLM's bench sampling options reach the server: a sampled run completes, and a bad value is each request's 400. */
	@Test
	void samplingOptionsAreSent() throws Exception {
		StringWriter out = new StringWriter();
		StringWriter err = new StringWriter();
		int code = Cli.run(new String[] { "bench", "--base-url", "http://127.0.0.1:" + port + "/v1", "--num-prompts", "4",
				"--random-input-len", "8", "--random-output-len", "8", "--ignore-eos", "--random-token-range", "3:500",
				"--temperature", "0.7", "--top-p", "0.9", "--top-k", "40", "--min-p", "0.05", "--json" }, a -> {
				}, new PrintWriter(out, true), new PrintWriter(err, true));
		assertThat(code).as(err.toString()).isZero();
		String[] lines = out.toString().strip().split("\n");
		assertThat(BenchCommand.JSON.readTree(lines[lines.length - 1]).path("completed").asInt()).isEqualTo(4);
		StringWriter out2 = new StringWriter();
		StringWriter err2 = new StringWriter();
		Cli.run(new String[] { "bench", "--base-url", "http://127.0.0.1:" + port + "/v1", "--num-prompts", "2",
				"--random-input-len", "8", "--random-output-len", "8", "--random-token-range", "3:500", "--top-p", "1.5",
				"--json" }, a -> {
				}, new PrintWriter(out2, true), new PrintWriter(err2, true));
		String[] lines2 = out2.toString().strip().split("\n");
		assertThat(BenchCommand.JSON.readTree(lines2[lines2.length - 1]).path("completed").asInt())
			.as("top_p 1.5 reached the server, which refused it").isZero();
	}
}
