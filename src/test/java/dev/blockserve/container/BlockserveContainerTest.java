package dev.blockserve.container;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.CompletionCreateParams;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The image built from the Dockerfile, run for real (Testcontainers on a local Docker engine; ports
 * published on 127.0.0.1 only, containers talking on networks the tests create): it serves the OpenAI
 * SDK, stops cleanly under {@code docker stop}, is scraped by a Prometheus container, comes up as the
 * compose stack, and refuses a missing or empty model folder with a clear line. Skips where no engine
 * or image is there (see {@link ContainerSupport}); under CI=true that fails.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class BlockserveContainerTest {

	static final JsonMapper JSON = JsonMapper.builder().build();

	@BeforeAll
	static void docker() {
		ContainerSupport.requireDockerAndImages(ContainerSupport.IMAGE, ContainerSupport.PROMETHEUS_IMAGE);
	}

	/** Nothing leaks: no container of the tests' images is left, running or stopped. */
	@org.junit.jupiter.api.AfterAll
	static void noContainerLeft() {
		if (!ContainerSupport.dockerAvailable()) {
			return; // the class was skipped (or, under CI, failed) in docker(): nothing ran, nothing to check
		}
		var left = DockerClientFactory.instance().client().listContainersCmd().withShowAll(true)
			.withAncestorFilter(List.of(ContainerSupport.IMAGE, ContainerSupport.PROMETHEUS_IMAGE)).exec();
		assertThat(left).as("containers left behind").isEmpty();
	}

	static String url(GenericContainer<?> c, String path) {
		return "http://127.0.0.1:" + c.getMappedPort(8000) + path;
	}

	static HttpResponse<String> post(String url, String body) throws Exception {
		return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
	}

	@Test
	void servesTheOpenAiSdkWithAModelMountedReadOnly() throws Exception {
		try (GenericContainer<?> c = ContainerSupport.blockserve("tiny-random-llama")) {
			c.start();
			assertThat(DockerClientFactory.instance().client().inspectContainerCmd(c.getContainerId()).exec().getState()
				.getHealth().getStatus()).isEqualTo("healthy");
			// published on the loopback interface only
			var bindings = DockerClientFactory.instance().client().inspectContainerCmd(c.getContainerId()).exec()
				.getNetworkSettings().getPorts().getBindings().get(com.github.dockerjava.api.model.ExposedPort.tcp(8000));
			assertThat(bindings).isNotEmpty().allMatch(b -> b.getHostIp().equals("127.0.0.1"));
			OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(url(c, "/v1")).apiKey("unused").build();
			// a golden prompt gives its golden text: the reference's greedy ids, detokenized by the server
			JsonNode golden = JSON.readTree(SharedModels.dir("tiny-random-llama").resolve("golden.json").toFile())
				.path("cases").get(0);
			String expected = JSON.readTree(post(url(c, "/detokenize"), "{\"model\": \"model\", \"tokens\": "
					+ golden.path("greedy_ids") + "}").body()).path("prompt").asString();
			var completion = client.completions().create(CompletionCreateParams.builder()
				.model("model")
				.prompt(golden.path("prompt_text").asString())
				.maxTokens(golden.path("greedy_ids").size())
				.temperature(0.0)
				.putAdditionalBodyProperty("ignore_eos", com.openai.core.JsonValue.from(true))
				.build());
			assertThat(completion.choices().get(0).text()).isEqualTo(expected);
			// streaming chat through the model's template
			StringBuilder text = new StringBuilder();
			List<String> finish = new ArrayList<>();
			try (var stream = client.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
				.model("model").addUserMessage("Hello!").maxCompletionTokens(16).temperature(0.0).build())) {
				stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> {
					ch.delta().content().ifPresent(text::append);
					ch.finishReason().ifPresent(f -> finish.add(f.asString()));
				}));
			}
			assertThat(finish).hasSize(1).first().isIn("stop", "length");
		}
	}

	/** One raw SSE stream: its lines, and whether it was still open when the stop was sent. */
	record Stream(List<String> lines, boolean openAtStop) {
	}

	@Test
	void dockerStopLetsStreamsEndCleanlyAndExitsZero() throws Exception {
		String[] id = new String[1];
		try (GenericContainer<?> c = ContainerSupport.blockserve("stories260K")) {
			c.start();
			id[0] = c.getContainerId();
			HttpClient http = HttpClient.newHttpClient();
			CountDownLatch started = new CountDownLatch(8);
			CountDownLatch stopping = new CountDownLatch(1);
			List<CompletableFuture<Stream>> streams = new ArrayList<>();
			for (int i = 0; i < 8; i++) {
				// 8 requests of 4 choices: about 5 s of generation on 2 cores, so the streams are still being
				// generated when the stop comes. It read slowly before, so the streams were mostly already generated
				// and buffered on the way (docker-proxy, which docker removes when the container stops): a likely
				// cause of its rare "IOException: closed" in CI, which would measure docker rather than the server
				String body = "{\"model\": \"model\", \"prompt\": \"Once upon a time " + i
						+ "\", \"max_tokens\": 480, \"n\": 4, \"ignore_eos\": true, \"stream\": true}";
				streams.add(CompletableFuture.supplyAsync(() -> {
					List<String> lines = new ArrayList<>();
					boolean open = false;
					try {
						HttpResponse<java.io.InputStream> r = http.send(HttpRequest.newBuilder(URI.create(url(c, "/v1/completions")))
							.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
								HttpResponse.BodyHandlers.ofInputStream());
						try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
							boolean first = true;
							for (String l; (l = in.readLine()) != null;) {
								if (l.startsWith("data: ")) {
									lines.add(l);
									if (first) {
										first = false;
										started.countDown();
									}
									if (stopping.getCount() == 0 && !open && !l.equals("data: [DONE]") && lines.size() > 1) {
										open = true; // events still arriving after the stop was sent
									}
								}
							}
						}
					}
					catch (Exception e) {
						lines.add("client error: " + e + (e.getCause() != null ? ", cause: " + e.getCause() : ""));
					}
					return new Stream(lines, open);
				}));
			}
			assertThat(started.await(60, TimeUnit.SECONDS)).as("all 8 streams started").isTrue();
			long t0 = System.nanoTime();
			stopping.countDown();
			DockerClientFactory.instance().client().stopContainerCmd(c.getContainerId()).withTimeout(10).exec();
			double seconds = (System.nanoTime() - t0) / 1e9;
			var state = DockerClientFactory.instance().client().inspectContainerCmd(c.getContainerId()).exec().getState();
			assertThat(state.getExitCodeLong()).as("exit code after docker stop (%.1f s)", seconds).isZero();
			assertThat(seconds).as("stopped within the 10 s grace period").isLessThan(10.0);
			int inFlight = 0;
			String logs = c.getLogs();
			for (CompletableFuture<Stream> f : streams) {
				Stream s = f.get(30, TimeUnit.SECONDS);
				List<String> tail = s.lines().subList(Math.max(0, s.lines().size() - 3), s.lines().size());
				assertThat(s.lines()).as("a stream ends with [DONE] (stop took %.1f s; %d lines, the last: %s; the server's log:%n%s)",
						seconds, s.lines().size(), tail, logs.substring(Math.max(0, logs.length() - 3000)))
					.isNotEmpty().last().isEqualTo("data: [DONE]");
				String before = s.lines().get(s.lines().size() - 2);
				assertThat(before).as("the event before [DONE]: a finish reason or an error")
					.matches(l -> l.contains("\"finish_reason\":\"") || l.contains("\"error\""));
				inFlight += s.openAtStop() ? 1 : 0;
			}
			assertThat(inFlight).as("streams still running when the stop was sent").isPositive();
		}
		finally {
			// stopped by hand above: make sure it is gone whether or not Testcontainers' close removed it
			if (id[0] != null) {
				try {
					DockerClientFactory.instance().client().removeContainerCmd(id[0]).withForce(true).exec();
				}
				catch (com.github.dockerjava.api.exception.NotFoundException removed) {
					// already removed
				}
			}
		}
	}

	@Test
	void prometheusScrapesTheContainerByItsNetworkAlias() throws Exception {
		try (Network net = Network.newNetwork();
				GenericContainer<?> c = ContainerSupport.blockserve("stories260K").withNetwork(net).withNetworkAliases("blockserve");
				GenericContainer<?> prom = ContainerSupport.onLoopback(
						new GenericContainer<>(DockerImageName.parse(ContainerSupport.PROMETHEUS_IMAGE)), 9090)
					.withNetwork(net)
					.withCopyToContainer(Transferable.of("""
							global:
							  scrape_interval: 1s
							scrape_configs:
							  - job_name: blockserve
							    metrics_path: /metrics
							    static_configs:
							      - targets: ['blockserve:8000']
							"""), "/etc/prometheus/prometheus.yml")
					.withCommand("prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/tmp/prometheus")
					.waitingFor(org.testcontainers.containers.wait.strategy.Wait.forHttp("/-/ready").forPort(9090))) {
			c.start();
			prom.start();
			// four requests in flight all along (each replaced when it ends) while Prometheus scrapes
			java.util.concurrent.atomic.AtomicBoolean loading = new java.util.concurrent.atomic.AtomicBoolean(true);
			java.util.concurrent.atomic.AtomicInteger failures = new java.util.concurrent.atomic.AtomicInteger();
			HttpClient http = HttpClient.newHttpClient();
			Runnable[] next = new Runnable[1];
			next[0] = () -> {
				if (loading.get()) {
					http.sendAsync(HttpRequest.newBuilder(URI.create(url(c, "/v1/completions")))
						.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
								"{\"model\": \"model\", \"prompt\": \"Once\", \"max_tokens\": 480, \"ignore_eos\": true}")).build(),
							HttpResponse.BodyHandlers.ofString())
						.whenComplete((r, e) -> {
							if (e != null || r.statusCode() != 200) {
								failures.incrementAndGet();
							}
							next[0].run();
						});
				}
			};
			for (int i = 0; i < 4; i++) {
				next[0].run();
			}
			String query = "http://127.0.0.1:" + prom.getMappedPort(9090) + "/api/v1/query?query=";
			double usage = -1;
			try {
				long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
				while (System.nanoTime() < end && usage <= 0) {
					JsonNode r = JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(
							query + "max(blockserve_kv_cache_usage_perc)")).build(), HttpResponse.BodyHandlers.ofString()).body());
					JsonNode result = r.path("data").path("result");
					if (result.size() > 0) {
						usage = Double.parseDouble(result.get(0).path("value").get(1).asString());
					}
					Thread.sleep(500);
				}
			}
			finally {
				loading.set(false);
			}
			assertThat(failures.get()).as("failed requests").isZero();
			assertThat(usage).as("KV usage scraped by Prometheus while requests run").isPositive();
			JsonNode up = JSON.readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
					query + "up%7Bjob%3D%22blockserve%22%7D")).build(), HttpResponse.BodyHandlers.ofString()).body());
			assertThat(up.path("data").path("result").get(0).path("value").get(1).asString()).isEqualTo("1");
		}
	}

	@Test
	void aMissingOrEmptyModelFolderExitsNonZeroWithOneClearLine(@TempDir Path empty) throws Exception {
		Files.setPosixFilePermissions(empty, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
		var docker = DockerClientFactory.instance().client();
		for (boolean mount : new boolean[] { false, true }) {
			var host = com.github.dockerjava.api.model.HostConfig.newHostConfig();
			if (mount) {
				host.withBinds(new com.github.dockerjava.api.model.Bind(empty.toString(),
						new com.github.dockerjava.api.model.Volume("/models/model"), com.github.dockerjava.api.model.AccessMode.ro));
			}
			String id = docker.createContainerCmd(ContainerSupport.IMAGE).withHostConfig(host).exec().getId();
			try {
				docker.startContainerCmd(id).exec();
				int exit = docker.waitContainerCmd(id).start().awaitStatusCode(120, TimeUnit.SECONDS);
				StringBuilder logs = new StringBuilder();
				docker.logContainerCmd(id).withStdOut(true).withStdErr(true).exec(
						new com.github.dockerjava.api.async.ResultCallback.Adapter<com.github.dockerjava.api.model.Frame>() {
							@Override
							public void onNext(com.github.dockerjava.api.model.Frame f) {
								logs.append(new String(f.getPayload(), StandardCharsets.UTF_8));
							}
						}).awaitCompletion(30, TimeUnit.SECONDS);
				String text = logs.toString();
				assertThat(exit).as("exit code, model folder %s\n%s", mount ? "empty" : "missing", text).isNotZero();
				String line = mount ? "/models/model has no config.json" : "/models/model does not exist";
				assertThat(text.lines().filter(l -> l.contains(line))).as(text).hasSize(1);
				assertThat(text).doesNotContain("\tat ");
			}
			finally {
				docker.removeContainerCmd(id).withForce(true).exec();
			}
		}
	}

	@Test
	void theComposeStackComesUpWithPrometheusScrapingBlockserve() throws Exception {
		String[] compose = ComposeSupport.command();
		int blockservePort = ComposeSupport.freePort(), prometheusPort = ComposeSupport.freePort();
		String project = "bs" + ProcessHandle.current().pid();
		java.util.Map<String, String> env = java.util.Map.of("MODEL_DIR", SharedModels.dir("stories260K").toAbsolutePath().toString(),
				"BLOCKSERVE_IMAGE", ContainerSupport.IMAGE, "PROMETHEUS_IMAGE", ContainerSupport.PROMETHEUS_IMAGE,
				"BLOCKSERVE_PORT", Integer.toString(blockservePort), "PROMETHEUS_PORT", Integer.toString(prometheusPort),
				"KV_CACHE_MEMORY", "64MB");
		try {
			ComposeSupport.Result upResult = ComposeSupport.run(env, 300, compose, "-p", project, "up", "-d");
			assertThat(upResult.exit()).as(upResult.output()).isZero();
			String targets = "http://127.0.0.1:" + prometheusPort + "/api/v1/targets";
			String health = null;
			long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
			while (System.nanoTime() < end) {
				try {
					HttpResponse<String> reply = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(targets)).build(),
							HttpResponse.BodyHandlers.ofString());
					// Prometheus answers 503 "Service Unavailable" in plain text until its storage is ready
					JsonNode active = reply.statusCode() == 200 ? JSON.readTree(reply.body()).path("data").path("activeTargets")
							: JSON.createArrayNode();
					if (active.size() > 0) {
						health = active.get(0).path("health").asString();
						if ("up".equals(health)) {
							break;
						}
					}
				}
				catch (java.io.IOException notYet) {
					// Prometheus starts once blockserve is healthy
				}
				Thread.sleep(1000);
			}
			assertThat(health).as("blockserve as Prometheus's target in the compose stack").isEqualTo("up");
			HttpResponse<String> models = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
					URI.create("http://127.0.0.1:" + blockservePort + "/v1/models")).build(), HttpResponse.BodyHandlers.ofString());
			assertThat(models.body()).contains("\"model\"");
		}
		finally {
			ComposeSupport.run(env, 120, compose, "-p", project, "down", "-v", "--remove-orphans");
		}
	}
}
