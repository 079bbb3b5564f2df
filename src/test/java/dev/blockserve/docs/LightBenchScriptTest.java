package dev.blockserve.docs;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.sun.net.httpserver.HttpServer;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import dev.blockserve.support.Scrape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code tools/light_bench.py}, the README's client for machines where a JVM client would share the server's
 * cores, run as a user runs it (python3, from the project's root): against the real server its counts agree
 * with the server's own Prometheus counters, and against a server whose stream ends without {@code [DONE]}
 * the request is a failure and the exit status says so.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=1024" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class LightBenchScriptTest {

	private static final JsonMapper JSON = JsonMapper.builder().build();

	@LocalServerPort
	int port;

	record Run(int exit, String out) {
	}

	static Run run(int port, String model, String... more) throws IOException, InterruptedException {
		List<String> cmd = new java.util.ArrayList<>(List.of("python3", "tools/light_bench.py", "--port", String.valueOf(port),
				"--model", model, "--json", "--timeout", "20"));
		cmd.addAll(List.of(more));
		Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
		String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
		assertThat(p.waitFor(60, TimeUnit.SECONDS)).as(out).isTrue();
		return new Run(p.exitValue(), out);
	}

	static JsonNode last(String out) {
		String[] lines = out.strip().split("\n");
		return JSON.readTree(lines[lines.length - 1]);
	}


	@Test
	void countsAgreeWithTheServersCounters() throws Exception {
		String before = RawHttp.request(port, "GET", "/metrics", null, null).body();
		Run r = run(port, "stories260K", "--clients", "3", "--requests", "9", "--input-len", "12", "--output-len", "8",
				"--vocab", "500");
		assertThat(r.exit()).as(r.out()).isZero();
		JsonNode j = last(r.out());
		String after = RawHttp.request(port, "GET", "/metrics", null, null).body();
		assertThat(j.path("completed").asInt()).isEqualTo(9);
		assertThat(j.path("failed").asInt()).isZero();
		assertThat(j.path("output_tokens").asDouble()).isEqualTo(9 * 8)
			.isEqualTo(Scrape.sum(after, "blockserve_generation_tokens_total") - Scrape.sum(before, "blockserve_generation_tokens_total"));
		assertThat(Scrape.sum(after, "blockserve_prompt_tokens_total") - Scrape.sum(before, "blockserve_prompt_tokens_total")).isEqualTo(9 * 12);
		assertThat(j.path("median_ttft_ms").asDouble()).isPositive();
		assertThat(j.path("output_throughput").asDouble()).isPositive();
	}

	@Test
	void aStreamWithoutDoneIsAFailure() throws Exception {
		HttpServer stub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
		stub.createContext("/v1/completions", ex -> {
			ex.getRequestBody().readAllBytes();
			ex.getResponseHeaders().add("Content-Type", "text/event-stream");
			ex.sendResponseHeaders(200, 0);
			try (OutputStream o = ex.getResponseBody()) {
				o.write("data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n".getBytes(StandardCharsets.UTF_8));
			}
		});
		stub.start();
		try {
			Run r = run(stub.getAddress().getPort(), "m", "--requests", "1", "--output-len", "4");
			assertThat(r.exit()).as(r.out()).isEqualTo(1);
			JsonNode j = last(r.out());
			assertThat(j.path("completed").asInt()).isZero();
			assertThat(j.path("failed").asInt()).isEqualTo(1);
			assertThat(j.path("errors").get(0).asString()).contains("without [DONE] after 1 chunks");
		}
		finally {
			stub.stop(0);
		}
	}

}
