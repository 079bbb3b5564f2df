package dev.blockserve.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * {@code blockserve bench} against a server whose streams misbehave: one stream stalls after its first chunk
 * and never ends, one ends without {@code [DONE]}. The run must still end (the --timeout covers the whole
 * stream, not only the headers, which the HTTP client's own timeout is limited to) and report both as
 * failed, saying how far each got; a healthy stream beside them completes.
 */
class BenchStreamEndTest {

	private HttpServer server;

	private ExecutorService pool;

	private final CountDownLatch release = new CountDownLatch(1);

	private final AtomicInteger requests = new AtomicInteger();

	@BeforeEach
	void start() throws IOException {
		server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
		pool = Executors.newCachedThreadPool();
		server.setExecutor(pool);
		server.createContext("/v1/models", ex -> answer(ex, "{\"data\":[{\"id\":\"m\"}]}"));
		server.createContext("/v1/completions", this::completions);
		server.start();
	}

	@AfterEach
	void stop() throws InterruptedException {
		release.countDown();
		server.stop(0);
		pool.shutdownNow();
		assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
	}

	private static void answer(HttpExchange ex, String json) throws IOException {
		byte[] b = json.getBytes(StandardCharsets.UTF_8);
		ex.getRequestBody().readAllBytes();
		ex.getResponseHeaders().add("Content-Type", "application/json");
		ex.sendResponseHeaders(200, b.length);
		try (OutputStream o = ex.getResponseBody()) {
			o.write(b);
		}
	}

	/** Request 1 stalls after a chunk, request 2 ends without [DONE], request 3 is a whole stream. */
	private void completions(HttpExchange ex) throws IOException {
		int n = requests.incrementAndGet();
		ex.getRequestBody().readAllBytes();
		ex.getResponseHeaders().add("Content-Type", "text/event-stream");
		ex.sendResponseHeaders(200, 0);
		OutputStream o = ex.getResponseBody();
		o.write(chunk("{\"choices\":[{\"index\":0,\"text\":\"a\"}]}"));
		o.flush();
		if (n == 1) {
			try {
				release.await(); // until the test ends
			}
			catch (InterruptedException e) {
				Thread.currentThread().interrupt();
			}
			return;
		}
		if (n == 3) {
			o.write(chunk("{\"choices\":[{\"index\":0,\"text\":\"b\"}]}"));
			o.write(chunk("{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}"));
			o.write(chunk("[DONE]"));
		}
		o.close();
	}

	private static byte[] chunk(String data) {
		return ("data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8);
	}

	@Test
	void aStalledStreamTimesOutAndATruncatedOneFails() {
		StringWriter out = new StringWriter();
		StringWriter err = new StringWriter();
		int code = assertTimeoutPreemptively(Duration.ofSeconds(60), () -> Cli.run(new String[] { "bench", "--base-url",
				"http://127.0.0.1:" + server.getAddress().getPort() + "/v1", "--num-prompts", "3", "--max-concurrency", "1",
				"--random-input-len", "4", "--random-output-len", "2", "--timeout", "2", "--json" }, a -> {
				}, new PrintWriter(out, true), new PrintWriter(err, true)));
		assertThat(code).as(err.toString()).isZero();
		String[] lines = out.toString().strip().split("\n");
		JsonNode r = BenchCommand.JSON.readTree(lines[lines.length - 1]);
		assertThat(r.path("completed").asInt()).isEqualTo(1);
		assertThat(r.path("failed").asInt()).isEqualTo(2);
		assertThat(r.path("total_output_tokens").asInt()).isEqualTo(2);
		assertThat(r.path("errors").toString())
			.contains("timed out after 2 s (--timeout) with 1 text chunks received and no [DONE]")
			.contains("the stream ended without [DONE] after 1 text chunks");
	}
}
