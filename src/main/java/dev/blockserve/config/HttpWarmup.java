package dev.blockserve.config;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

import dev.blockserve.api.Api;
import dev.blockserve.api.WarmupRequests;
import dev.blockserve.engine.Engine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationListener;
import org.springframework.core.Ordered;
import org.springframework.core.env.Environment;

/**
 * Sends the server a few tiny requests through its own HTTP port once it listens, before it reports
 * ready: a streamed and a whole completion, and a streamed chat where the model has a template. The
 * engine's warm-up ({@code Warmup}) compiles the engine; these load and compile the rest of a request's
 * path (Netty, WebFlux, the API handlers, JSON, the SSE writer), which otherwise the first user pays for:
 * on a 2-core EPYC and a SmolLM2-135M-shaped model a fresh server's first 64-token request took 2.2-2.4 s
 * (time to first token 0.8-0.9 s) against 1.5 s once warm. While it runs, /health answers 503 "starting",
 * and neither the engine's metrics nor the HTTP server's count these requests, nor the rate limits (they
 * carry a header with a secret made at start, which only this process knows: {@link WarmupRequests}). A
 * failure here is logged and never stops the server. Thread: the start-up thread, which only waits on the
 * requests.
 */
final class HttpWarmup implements ApplicationListener<ApplicationReadyEvent>, Ordered {

	private static final Logger log = LoggerFactory.getLogger(HttpWarmup.class);

	private final Api api;

	private final Engine engine;

	private final boolean enabled;

	private final String apiKey;

	private final boolean chat;

	private final WarmupRequests warmup;

	HttpWarmup(Api api, Engine engine, WarmupRequests warmup, boolean enabled, String apiKey, boolean chat) {
		this.api = api;
		this.engine = engine;
		this.enabled = enabled;
		this.apiKey = apiKey;
		this.chat = chat;
		this.warmup = warmup;
	}

	@Override
	public int getOrder() {
		return Ordered.HIGHEST_PRECEDENCE; // before the ready line
	}

	@Override
	public void onApplicationEvent(ApplicationReadyEvent event) {
		if (!enabled) {
			return;
		}
		Environment env = event.getApplicationContext().getEnvironment();
		String port = env.getProperty("local.server.port");
		if (port == null) {
			return; // no web server (a command-line run)
		}
		String host = env.getProperty("server.address", "127.0.0.1");
		if (host.equals("0.0.0.0") || host.equals("::")) {
			host = "127.0.0.1";
		}
		int p = Integer.parseInt(port);
		api.starting("warming up the HTTP path");
		engine.quiet(true);
		long t0 = System.nanoTime();
		try {
			String completion = "{\"prompt\":\"Hello\",\"max_tokens\":2,\"ignore_eos\":true";
			send(host, p, "/v1/completions", completion + ",\"stream\":true}");
			send(host, p, "/v1/completions", completion + "}");
			if (chat) {
				send(host, p, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
						+ "\"max_tokens\":2,\"ignore_eos\":true,\"stream\":true}");
			}
			log.info("Warmed up the HTTP path in {} ms", (System.nanoTime() - t0) / 1_000_000);
		}
		catch (IOException | RuntimeException e) {
			log.warn("The HTTP warm-up failed ({}); serving without it", e.toString());
		}
		finally {
			engine.quiet(false);
			api.starting(null);
		}
	}

	/**
	 * One request on its own connection, read to its end ({@code Connection: close}); a plain socket so that
	 * nothing of a client (its selector thread) outlives the warm-up.
	 */
	private void send(String host, int port, String path, String body) throws IOException {
		byte[] b = body.getBytes(StandardCharsets.UTF_8);
		StringBuilder head = new StringBuilder("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(host)
			.append("\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ").append(b.length)
			.append("\r\n").append(WarmupRequests.HEADER).append(": ").append(warmup.secret()).append("\r\n");
		if (apiKey != null) {
			head.append("Authorization: Bearer ").append(apiKey).append("\r\n");
		}
		head.append("\r\n");
		try (Socket socket = new Socket()) {
			socket.connect(new InetSocketAddress(host, port), 10_000);
			socket.setSoTimeout(60_000);
			OutputStream out = socket.getOutputStream();
			out.write(head.toString().getBytes(StandardCharsets.US_ASCII));
			out.write(b);
			out.flush();
			String response = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
			if (!response.startsWith("HTTP/1.1 200")) {
				throw new IOException(path + " answered " + response.lines().findFirst().orElse("nothing"));
			}
		}
	}
}
