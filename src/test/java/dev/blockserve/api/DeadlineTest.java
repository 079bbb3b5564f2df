package dev.blockserve.api;

import java.util.Map;
import java.util.List;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.FaultInjector;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * blockserve.api.request-timeout: a request still generating at its deadline is ended by the engine,
 * its blocks are freed within a step, and the client gets a timeout error (a 408 in the envelope, or an
 * error event then [DONE] on a stream). Each step is slowed through the engine's test hook, so 400
 * tokens take longer than the 1 s deadline.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=512",
				"blockserve.api.request-timeout=1s" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class DeadlineTest {

	@LocalServerPort
	int port;

	@Autowired
	Engine engine;

	static final String LONG = Api.JSON.writeValueAsString(Map.of("prompt", "Once upon a time", "max_tokens", 400,
			"ignore_eos", true, "temperature", 0));

	@BeforeEach
	void slowSteps() {
		engine.faults((stage, prompt, params) -> {
			if (stage == FaultInjector.Stage.FORWARD) {
				try {
					Thread.sleep(10);
				}
				catch (InterruptedException e) {
					Thread.currentThread().interrupt();
				}
			}
		});
	}

	@AfterEach
	void normalSteps() {
		engine.faults(FaultInjector.NONE);
	}

	@Test
	void aRequestPastItsDeadlineGets408AndFreesItsBlocks() throws Exception {
		long t0 = System.nanoTime();
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/completions", null, LONG);
		long ms = (System.nanoTime() - t0) / 1_000_000;
		assertThat(r.status()).as(r.body()).isEqualTo(408);
		assertThat(r.body()).contains("\"type\":\"timeout\"").contains("deadline");
		assertThat(ms).as("ms until the timeout answer").isBetween(900L, 5_000L);
		assertThat(EngineProbes.usedBlocks(engine)).as("blocks held after the deadline").isZero();
	}

	@Test
	void aStreamPastItsDeadlineEndsWithAnErrorEvent() throws Exception {
		String body = LONG.replace("\"temperature\":0", "\"temperature\":0,\"stream\":true");
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/completions", null, body);
		assertThat(r.status()).isEqualTo(200);
		assertThat(r.body()).contains("\"type\":\"timeout\"").contains("data: [DONE]");
		assertThat(r.body().indexOf("\"type\":\"timeout\"")).as("the error event comes before [DONE]")
			.isLessThan(r.body().indexOf("data: [DONE]"));
		assertThat(EngineProbes.usedBlocks(engine)).isZero();
	}

	/**
	 * An embeddings batch runs 64 inputs at a time; the request's deadline holds for the whole batch (each
	 * later input gets what is left of it), so 2,048 inputs of 40 tokens (160 steps of 512 tokens, at least
	 * 1.6 s with the 10 ms steps here, while each input takes about 5 steps) answer 408 near the deadline
	 * rather than 200 with each wave starting a deadline of its own.
	 */
	@Test
	void anEmbeddingBatchPastItsDeadlineGets408() throws Exception {
		List<List<Integer>> inputs = new java.util.ArrayList<>();
		for (int i = 0; i < 2048; i++) {
			List<Integer> ids = new java.util.ArrayList<>();
			for (int j = 0; j < 40; j++) {
				ids.add(3 + (i * 31 + j * 7) % 500);
			}
			inputs.add(ids);
		}
		long t0 = System.nanoTime();
		RawHttp.Response r = RawHttp.request(port, "POST", "/v1/embeddings", null, Api.JSON.writeValueAsString(Map.of("input", inputs)));
		long ms = (System.nanoTime() - t0) / 1_000_000;
		assertThat(r.status()).as(r.body().substring(0, Math.min(300, r.body().length()))).isEqualTo(408);
		assertThat(ms).as("ms until the timeout answer").isBetween(900L, 5_000L);
		long deadline = System.nanoTime() + 5_000_000_000L;
		while (EngineProbes.usedBlocks(engine) > 0 && System.nanoTime() < deadline) {
			Thread.sleep(20);
		}
		assertThat(EngineProbes.usedBlocks(engine)).as("blocks held after the deadline").isZero();
	}
}
