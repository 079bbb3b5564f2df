package dev.blockserve.api;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.FaultInjector;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A streamed token reaches the client while the engine is still working on the next one: the engine is
 * held before its third forward pass (after the prompt's step and one decode step made two tokens), and
 * both tokens' events must arrive over the socket while it waits. A writer that buffered events until more
 * came, or until the stream ended, fails here; the rest of the stream and [DONE] follow the release.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=512" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class SseFlushTest {

	@LocalServerPort
	int port;

	@Autowired
	Engine engine;

	@AfterEach
	void normalSteps() {
		engine.faults(FaultInjector.NONE);
	}

	@Test
	void eachTokenIsFlushedBeforeTheNextIsMade() throws Exception {
		CountDownLatch release = new CountDownLatch(1);
		CountDownLatch held = new CountDownLatch(1);
		AtomicInteger forwards = new AtomicInteger();
		engine.faults((stage, prompt, params) -> {
			if (stage == FaultInjector.Stage.FORWARD && forwards.incrementAndGet() == 3) {
				held.countDown();
				try {
					release.await(30, TimeUnit.SECONDS); // bounded: a failing test must not hang the engine
				}
				catch (InterruptedException e) {
					Thread.currentThread().interrupt();
				}
			}
		});
		String body = Api.JSON.writeValueAsString(Map.of("prompt", "Once upon a time", "max_tokens", 6, "ignore_eos", true,
				"temperature", 0, "stream", true));
		byte[] b = body.getBytes(StandardCharsets.UTF_8);
		try (Socket s = new Socket("127.0.0.1", port)) {
			s.setSoTimeout(10_000);
			OutputStream out = s.getOutputStream();
			out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
					+ "Content-Type: application/json\r\nContent-Length: " + b.length + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
			out.write(b);
			out.flush();
			InputStream in = s.getInputStream();
			StringBuilder got = new StringBuilder();
			assertThat(held.await(10, TimeUnit.SECONDS)).as("the engine reached its third forward pass").isTrue();
			byte[] buf = new byte[4096];
			while (count(got, "\"text\"") < 2) {
				int n;
				try {
					n = in.read(buf);
				}
				catch (java.net.SocketTimeoutException e) {
					throw new AssertionError("two token events did not arrive while the engine waited; got: " + got, e);
				}
				assertThat(n).as("stream ended early: " + got).isPositive();
				got.append(new String(buf, 0, n, StandardCharsets.UTF_8));
			}
			assertThat(got).doesNotContain("[DONE]");
			release.countDown();
			int n;
			while ((n = in.read(buf)) > 0) {
				got.append(new String(buf, 0, n, StandardCharsets.UTF_8));
			}
			assertThat(count(got, "\"text\"")).as("six tokens, then the event that ends the choice").isEqualTo(7);
			assertThat(got.toString()).contains("data: [DONE]");
		}
		finally {
			release.countDown();
		}
	}

	private static int count(CharSequence s, String what) {
		int c = 0;
		for (int i = s.toString().indexOf(what); i >= 0; i = s.toString().indexOf(what, i + 1)) {
			c++;
		}
		return c;
	}

}
