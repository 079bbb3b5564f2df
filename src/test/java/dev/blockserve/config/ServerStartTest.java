package dev.blockserve.config;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;

import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.web.reactive.function.client.WebClient;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The real server on a random port: health once the model is loaded, clear failures on bad configuration. */
@org.junit.jupiter.api.extension.ExtendWith(org.springframework.boot.test.system.OutputCaptureExtension.class)
class ServerStartTest {

	private static ConfigurableApplicationContext start(String... args) {
		SpringApplication app = new SpringApplication(BlockserveApplication.class);
		return app.run(args);
	}

	@Test
	void healthIsUpWithTheModelLoaded(org.springframework.boot.test.system.CapturedOutput output) {
		String model = SharedModels.dir("stories260K").toString();
		try (var ctx = start("--server.port=0", "--blockserve.model=" + model, "--blockserve.kv-cache.num-blocks=64")) {
			int port = ctx.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
			// one line says where to point a client, what is served and on what
			assertThat(output.getOut()).contains("blockserve ready: http://localhost:" + port + "/v1 (listening on 0.0.0.0)")
				.contains("model 'stories260K'")
				.contains("device cpu")
				.contains("KV cache 64 blocks x 16 tokens");
			String body = WebClient.create("http://127.0.0.1:" + port).get().uri("/actuator/health").retrieve()
				.bodyToMono(String.class).block();
			assertThat(body).contains("\"status\":\"UP\"").contains("stories260K");
		}
	}

	@Test
	void invalidBlockSizeFailsStartupNamingTheProperty() {
		String model = SharedModels.dir("stories260K").toString();
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.kv-cache.block-size=0").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("blockserve.kv-cache.block-size must be in [1, 1024]"));
	}

	@Test
	void defaultModelOfflineAndUncachedFailsStartupSayingWhatToDo(org.springframework.boot.test.system.CapturedOutput output) {
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.hub-offline=true").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("HuggingFaceTB/SmolLM2-135M-Instruct")
				.contains("HF_HUB_OFFLINE")
				.contains("local model directory"));
		// a short report (cause and fix), not a stack trace repeating the message at every bean
		assertThat(output.getAll()).contains("APPLICATION FAILED TO START").contains("The model could not be loaded")
			.contains("Action:");
		assertThat(output.getAll().lines().filter(l -> l.startsWith("\tat ")).count()).as("stack trace lines").isZero();
	}

	/** With no budget given, the CPU pool is sized to the model (KvCacheSizing) and the log says so. */
	@Test
	void theDefaultPoolIsSizedToTheModel(org.springframework.boot.test.system.CapturedOutput output) {
		String model = SharedModels.dir("stories260K").toString();
		try (var ctx = start("--server.port=0", "--blockserve.model=" + model, "--blockserve.warmup-tokens=0")) {
			// stories260K: 5 layers x 4 KV heads x 8 x 2 (K and V) x 4 bytes = 1,280 bytes a token; its context
			// (512) is short, so the floor of 16,384 tokens applies: 1,024 blocks of 16
			assertThat(output.getOut()).contains("KV cache budget sized to the model: 20 MiB for 16,384 tokens")
				.contains("KV cache 1,024 blocks x 16 tokens (20 MiB f32, 16,384 tokens)")
				// a 1 MB file is not worth a copy into huge pages (blockserve.weight-pages=auto)
				.contains("weight files: model.safetensors mapped, ").contains("% in 2 MiB pages (not copied: ");
		}
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.weight-pages=1g").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("blockserve.weight-pages must be auto, huge or mapped, got '1g'"));
	}

	/** An F16 cache holds the same tokens in half the memory, and serves; an unknown type fails start-up naming the property. */
	@Test
	void anF16CacheTakesHalfTheMemoryAndServes(org.springframework.boot.test.system.CapturedOutput output) {
		String model = SharedModels.dir("stories260K").toString();
		try (var ctx = start("--server.port=0", "--blockserve.model=" + model, "--blockserve.warmup-tokens=0",
				"--blockserve.kv-cache.dtype=f16")) {
			assertThat(output.getOut()).contains("KV cache budget sized to the model: 10 MiB for 16,384 tokens")
				.contains("KV cache 1,024 blocks x 16 tokens (10 MiB f16, 16,384 tokens)");
			int port = ctx.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
			String out = WebClient.create("http://127.0.0.1:" + port).post().uri("/v1/completions")
				.header("Content-Type", "application/json")
				.bodyValue("{\"prompt\":\"Once upon a time\",\"temperature\":0,\"max_tokens\":8}").retrieve()
				.bodyToMono(String.class).block();
			assertThat(out).contains("\"finish_reason\":\"length\"").contains("\"completion_tokens\":8");
			String metrics = WebClient.create("http://127.0.0.1:" + port).get().uri("/metrics").retrieve()
				.bodyToMono(String.class).block();
			assertThat(metrics).contains("cache_dtype=\"float16\"");
		}
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.kv-cache.dtype=fp8").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("blockserve.kv-cache.dtype must be f32, bf16 or f16, got 'fp8'"));
	}

	@Test
	void aBadReasoningParserNamesTheProperty() {
		String model = SharedModels.dir("stories260K").toString();
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.api.reasoning-parser=granite").close())
			.satisfies(e -> assertThat(rootMessage(e))
				.contains("blockserve.api.reasoning-parser must be auto, think (or qwen3, deepseek_r1) or none, got 'granite'"));
	}

	@Test
	void badSpeculativeSettingsNameTheProperty() {
		String model = SharedModels.dir("stories260K").toString();
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.speculative.num-tokens=4", "--blockserve.speculative.prompt-lookup-min=5").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains(
					"blockserve.speculative.prompt-lookup-min must be >= 1 and <= prompt-lookup-max, got 5 and 4"));
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.speculative.num-tokens=65").close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("blockserve.speculative.num-tokens must be in 0..64, got 65"));
	}

	/** A pool smaller than the model's context: the context is lowered to what the pool holds. */
	@Test
	void aCacheSmallerThanTheContextLowersTheContextLength() {
		String model = SharedModels.dir("stories260K").toString();
		try (var ctx = start("--server.port=0", "--blockserve.model=" + model, "--blockserve.kv-cache.num-blocks=4",
				"--blockserve.kv-cache.block-size=16")) {
			int port = ctx.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
			WebClient web = WebClient.create("http://127.0.0.1:" + port);
			assertThat(web.get().uri("/v1/models").retrieve().bodyToMono(String.class).block())
				.contains("\"max_model_len\":64");
			// a request that leaves max_tokens to the context is served, not rejected
			String out = web.post().uri("/v1/completions").header("Content-Type", "application/json")
				.bodyValue("{\"prompt\":\"Once upon a time\",\"temperature\":0}").retrieve().bodyToMono(String.class).block();
			assertThat(out).contains("\"finish_reason\"");
		}
	}

	/** A pool of one block shortens the context to 16 tokens: the warm-up shrinks to fit instead of failing start-up. */
	@Test
	void theWarmupFitsAContextShorterThanItself(org.springframework.boot.test.system.CapturedOutput output) {
		String model = SharedModels.dir("stories260K").toString();
		try (var ctx = start("--server.port=0", "--blockserve.model=" + model, "--blockserve.kv-cache.num-blocks=1",
				"--blockserve.kv-cache.block-size=16", "--blockserve.warmup-tokens=16")) {
			assertThat(output.getOut()).contains("Warmed up in").contains("context 16 tokens");
		}
	}

	/** An explicit context length the pool cannot hold fails start-up naming both numbers (as vLLM does). */
	@Test
	void anExplicitContextLengthTheCacheCannotHoldFailsStartup() {
		String model = SharedModels.dir("stories260K").toString();
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + model,
				"--blockserve.kv-cache.num-blocks=4", "--blockserve.kv-cache.block-size=16", "--blockserve.max-model-len=512")
			.close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("max-model-len is 512 tokens")
				.contains("holds 64 tokens (4 blocks of 16)"));
	}

	/** The server refuses an architecture it does not implement, naming it, at start-up. */
	@Test
	void anUnsupportedArchitectureFailsStartupNamingIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
			throws Exception {
		dev.blockserve.support.TestModelWriter w = new dev.blockserve.support.TestModelWriter();
		w.configOverrides.put("architectures", "[\"Gemma2ForCausalLM\"]");
		w.configOverrides.put("model_type", "\"gemma2\"");
		java.nio.file.Path dir = w.write(tmp.resolve("gemma2"));
		assertThatThrownBy(() -> start("--server.port=0", "--blockserve.model=" + dir).close())
			.satisfies(e -> assertThat(rootMessage(e)).contains("architecture 'Gemma2ForCausalLM' is not supported")
				.contains("MistralForCausalLM"));
	}

	/**
	 * Kernels run on the engine thread alone once the server is up: loading (here with a conversion to
	 * BF16, whose rounding runs in parallel regions) and the warm-up ran on threads that have ended, so the
	 * long-lived thread that started the server keeps no libgomp team (a second team made every step of the
	 * engine 10-25% slower on 2 cores). The warm-up leaves nothing counted: the token counter is 0 until a
	 * request is served.
	 */
	@Test
	void onlyTheEngineThreadKeepsAKernelTeamAndTheWarmupCountsNothing(
			org.springframework.boot.test.system.CapturedOutput output) throws Exception {
		String model = SharedModels.dir("stories260K").toString();
		int before = dev.blockserve.backend.CpuBackend.teamThreads();
		var started = new java.util.concurrent.CompletableFuture<ConfigurableApplicationContext>();
		var release = new java.util.concurrent.CountDownLatch(1);
		// a starter thread that outlives start-up, as a server's main thread does
		Thread main = new Thread(() -> {
			try {
				started.complete(start("--server.port=0", "--blockserve.model=" + model,
						"--blockserve.kv-cache.num-blocks=64", "--blockserve.dtype=bf16", "--blockserve.warmup-tokens=8"));
				release.await();
			}
			catch (Throwable e) {
				started.completeExceptionally(e);
			}
		}, "test-server-main");
		main.start();
		try (var ctx = started.get(60, java.util.concurrent.TimeUnit.SECONDS)) {
			assertThat(output.getOut()).contains("Warmed up in").contains("(two requests of up to 8 new tokens)");
			int port = ctx.getEnvironment().getRequiredProperty("local.server.port", Integer.class);
			WebClient web = WebClient.create("http://127.0.0.1:" + port);
			assertThat(web.get().uri("/metrics").retrieve().bodyToMono(String.class).block()).as("before any request")
				.containsPattern("(?m)^blockserve_generation_tokens_total\\{[^}]*\\} 0\\.0$");
			String out = web.post().uri("/v1/completions").header("Content-Type", "application/json")
				.bodyValue("{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}").retrieve()
				.bodyToMono(String.class).block();
			assertThat(out).contains("\"completion_tokens\":8");
			assertThat(dev.blockserve.backend.CpuBackend.teamThreads() - before)
				.as("threads keeping a kernel team: the engine thread only").isEqualTo(1);
		}
		finally {
			release.countDown();
			main.join(10_000);
		}
	}

	private static String rootMessage(Throwable e) {
		Throwable t = e;
		while (t.getCause() != null) {
			t = t.getCause();
		}
		return t.getMessage();
	}
}
