package dev.blockserve.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code blockserve bench}: a serving benchmark against any OpenAI-compatible endpoint, with the flags and
 * result keys of {@code vllm bench serve}. Streams every request and measures time to first token,
 * inter-token latency and end-to-end latency, in closed loop ({@code --max-concurrency}) or open loop
 * ({@code --request-rate}, Poisson or constant arrivals). Prompts are random token ids of a given length or
 * come from a JSONL file. The HTTP client's threads do the measuring; the caller's thread reports.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, versionProvider = Cli.VersionProvider.class,
		description = "Benchmark an OpenAI-compatible server (the flags and result keys of 'vllm bench serve').",
		footer = { "", "Example:",
				"  blockserve bench --base-url http://127.0.0.1:8000/v1 --num-prompts 64 --max-concurrency 8 \\",
				"      --random-input-len 128 --random-output-len 64 --ignore-eos --json" })
public final class BenchCommand implements Callable<Integer> {

	static final JsonMapper JSON = JsonMapper.builder().build();

	@Spec
	CommandLine.Model.CommandSpec spec;

	@Option(names = "--base-url", defaultValue = "http://127.0.0.1:8000/v1", description = "the server's /v1 URL (default: ${DEFAULT-VALUE})")
	String baseUrl;

	@Option(names = "--model", description = "the model name to send (default: the first of GET /models)")
	String model;

	@Option(names = "--num-prompts", defaultValue = "100", description = "requests to send (default: ${DEFAULT-VALUE})")
	int numPrompts;

	@Option(names = "--max-concurrency", description = "requests in flight at most (closed loop; default: no limit)")
	Integer maxConcurrency;

	@Option(names = "--request-rate", defaultValue = "inf", description = "requests per second (open loop); inf sends all at once")
	String requestRate;

	@Option(names = "--arrival", defaultValue = "poisson", description = "arrival process for --request-rate: poisson or constant")
	String arrival;

	@Option(names = "--random-input-len", defaultValue = "128", description = "prompt tokens of a random prompt (default: ${DEFAULT-VALUE})")
	int inputLen;

	@Option(names = "--random-output-len", defaultValue = "64", description = "max_tokens of each request (default: ${DEFAULT-VALUE})")
	int outputLen;

	@Option(names = "--random-range-ratio", defaultValue = "0", description = "lengths drawn in [len*(1-r), len*(1+r)]")
	double rangeRatio;

	@Option(names = "--random-token-range", defaultValue = "10:500", description = "token ids of random prompts, from:to (default: ${DEFAULT-VALUE})")
	String tokenRange;

	@Option(names = "--dataset-path", description = "JSONL prompts: {\"prompt\": text or ids, \"max_tokens\": n}")
	Path dataset;

	@Option(names = "--ignore-eos", description = "generate max_tokens tokens whatever the model says (vLLM's extension)")
	boolean ignoreEos;

	@Option(names = "--seed", defaultValue = "0", description = "seed of prompts and arrivals")
	long seed;

	@CommandLine.Mixin
	SamplingOptions sampling;

	@Option(names = "--api-key", description = "sent as Authorization: Bearer")
	String apiKey;

	@Option(names = "--goodput", split = " ", paramLabel = "ttft:MS|tpot:MS|e2el:MS",
			description = "SLOs a request must meet to count as good, e.g. --goodput ttft:500 e2el:5000")
	List<String> goodput = new ArrayList<>();

	@Option(names = "--timeout", defaultValue = "600", description = "seconds a request may take, its whole stream included (default: ${DEFAULT-VALUE})")
	int timeoutSeconds;

	/** Ends the streams that pass --timeout (one daemon thread per run). */
	private ScheduledExecutorService watchdog;

	@Option(names = "--json", description = "print one JSON object with the results on the last line of stdout")
	boolean json;

	/** One request's outcome: times in ms; ok false with the error. */
	record Result(boolean ok, String error, int inputTokens, int outputTokens, double ttftMs, double e2elMs,
			List<Double> itlMs) {
	}

	record Prompt(Object prompt, int inputTokens, int maxTokens) {
	}

	@Override
	public Integer call() throws Exception {
		PrintWriter out = spec.commandLine().getOut();
		PrintWriter err = spec.commandLine().getErr();
		// HTTP/1.1 as vLLM's benchmark (aiohttp) and the OpenAI SDKs speak it: no h2c upgrade attempt
		HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
			.connectTimeout(Duration.ofSeconds(30)).build();
		watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
			Thread t = new Thread(r, "bench-watchdog");
			t.setDaemon(true);
			return t;
		});
		try {
			return run(http, out, err);
		}
		finally {
			watchdog.shutdownNow();
		}
	}

	private Integer run(HttpClient http, PrintWriter out, PrintWriter err) throws Exception {
		String base = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
		if (model == null) {
			JsonNode models = JSON.readTree(http.send(request(base + "/models").GET().build(), HttpResponse.BodyHandlers.ofString())
				.body());
			model = models.path("data").path(0).path("id").asString(null);
			if (model == null) {
				throw new CommandLine.ParameterException(spec.commandLine(), base + "/models names no model; give --model");
			}
		}
		List<Prompt> prompts = prompts();
		Random arrivals = new Random(seed + 1);
		double rate = requestRate.equals("inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(requestRate);
		Semaphore slots = new Semaphore(maxConcurrency == null ? Integer.MAX_VALUE : maxConcurrency);
		List<CompletableFuture<Result>> futures = new ArrayList<>();
		AtomicInteger done = new AtomicInteger();
		long start = System.nanoTime();
		for (Prompt p : prompts) {
			if (!Double.isInfinite(rate)) {
				double gap = arrival.equals("constant") ? 1 / rate : -Math.log(1 - arrivals.nextDouble()) / rate;
				Thread.sleep((long) (gap * 1000), (int) ((gap * 1e9) % 1_000_000));
			}
			slots.acquire();
			futures.add(send(http, base, p).whenComplete((r, e) -> {
				slots.release();
				progress(err, done.incrementAndGet(), prompts.size());
			}));
		}
		List<Result> results = new ArrayList<>();
		for (CompletableFuture<Result> f : futures) {
			results.add(f.join());
		}
		double seconds = (System.nanoTime() - start) / 1e9;
		err.println();
		Map<String, Object> report = report(results, seconds);
		print(out, report);
		if (json) {
			out.println(JSON.writeValueAsString(report));
		}
		out.flush();
		return 0;
	}

	private HttpRequest.Builder request(String url) {
		HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(timeoutSeconds));
		if (apiKey != null) {
			b.header("Authorization", "Bearer " + apiKey);
		}
		return b;
	}

	List<Prompt> prompts() throws Exception {
		Random r = new Random(seed);
		List<Prompt> out = new ArrayList<>();
		if (dataset != null) {
			try (Stream<String> lines = Files.lines(dataset)) {
				for (String line : (Iterable<String>) lines::iterator) {
					if (line.isBlank() || out.size() >= numPrompts) {
						continue;
					}
					JsonNode n = JSON.readTree(line);
					Object prompt = n.path("prompt").isArray() ? JSON.convertValue(n.get("prompt"), int[].class)
							: n.path("prompt").asString();
					int in = prompt instanceof int[] ids ? ids.length : 0;
					out.add(new Prompt(prompt, in, n.path("max_tokens").asInt(outputLen)));
				}
			}
			return out;
		}
		String[] range = tokenRange.split(":");
		int lo = Integer.parseInt(range[0]), hi = Integer.parseInt(range[1]);
		for (int i = 0; i < numPrompts; i++) {
			int in = vary(r, inputLen), max = vary(r, outputLen);
			int[] ids = new int[in];
			for (int j = 0; j < in; j++) {
				ids[j] = lo + r.nextInt(hi - lo);
			}
			out.add(new Prompt(ids, in, max));
		}
		return out;
	}

	private int vary(Random r, int len) {
		if (rangeRatio <= 0) {
			return len;
		}
		int a = (int) Math.max(1, Math.round(len * (1 - rangeRatio))), b = (int) Math.round(len * (1 + rangeRatio));
		return a + r.nextInt(Math.max(1, b - a + 1));
	}

	CompletableFuture<Result> send(HttpClient http, String base, Prompt p) {
		Map<String, Object> body = new LinkedHashMap<>();
		body.put("model", model);
		body.put("prompt", p.prompt());
		body.put("max_tokens", p.maxTokens());
		sampling.putInto(body);
		body.put("stream", true);
		body.put("stream_options", Map.of("include_usage", true));
		if (ignoreEos) {
			body.put("ignore_eos", true);
		}
		long t0 = System.nanoTime();
		HttpRequest req = request(base + "/completions").header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
			.build();
		long deadline = t0 + Duration.ofSeconds(timeoutSeconds).toNanos();
		return http.sendAsync(req, HttpResponse.BodyHandlers.ofInputStream())
			.thenApply(resp -> read(resp, p, t0, deadline))
			.exceptionally(e -> new Result(false, String.valueOf(e.getCause() != null ? e.getCause() : e), p.inputTokens(),
					0, 0, 0, List.of()));
	}

	/**
	 * Reads one streamed response to its {@code [DONE]}. The whole request, body included, must end by
	 * {@code deadline} (the HTTP client's own timeout covers only the headers): past it the watchdog closes
	 * the body, and the request fails saying how far its stream got. A stream that ends without
	 * {@code [DONE]} fails too, so a truncated response is never counted as complete.
	 */
	private Result read(HttpResponse<InputStream> resp, Prompt p, long t0, long deadline) {
		AtomicBoolean timedOut = new AtomicBoolean();
		ScheduledFuture<?> cut = watchdog.schedule(() -> {
			timedOut.set(true);
			closeQuietly(resp.body());
		}, Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
		long first = -1, last = -1;
		int chunks = 0, usageOut = -1, usageIn = -1;
		boolean done = false;
		List<Double> itl = new ArrayList<>();
		try (BufferedReader body = new BufferedReader(new InputStreamReader(resp.body(), StandardCharsets.UTF_8))) {
			if (resp.statusCode() != 200) {
				StringBuilder b = new StringBuilder();
				body.lines().forEach(b::append);
				return new Result(false, resp.statusCode() + " " + b, p.inputTokens(), 0, 0, 0, List.of());
			}
			for (String line; (line = body.readLine()) != null;) {
				if (line.equals("data: [DONE]")) {
					done = true;
					continue;
				}
				if (!line.startsWith("data: ")) {
					continue;
				}
				JsonNode c = JSON.readTree(line.substring(6));
				if (c.has("error")) {
					return new Result(false, c.path("error").path("message").asString(), p.inputTokens(), 0, 0, 0, List.of());
				}
				if (c.path("usage").isObject()) {
					usageOut = c.path("usage").path("completion_tokens").asInt();
					usageIn = c.path("usage").path("prompt_tokens").asInt();
				}
				if (!c.path("choices").path(0).path("text").asString("").isEmpty()) {
					long now = System.nanoTime();
					if (first < 0) {
						first = now;
					}
					else {
						itl.add((now - last) / 1e6);
					}
					last = now;
					chunks++;
				}
			}
		}
		catch (IOException | RuntimeException e) {
			if (!timedOut.get()) {
				return new Result(false, "the stream broke after " + chunks + " text chunks: " + e, p.inputTokens(), 0, 0,
						0, List.of());
			}
		}
		finally {
			cut.cancel(false);
		}
		if (timedOut.get() && !done) {
			return new Result(false, "timed out after " + timeoutSeconds + " s (--timeout) with " + chunks
					+ " text chunks received and no [DONE]", p.inputTokens(), 0, 0, 0, List.of());
		}
		if (!done) {
			return new Result(false, "the stream ended without [DONE] after " + chunks + " text chunks", p.inputTokens(), 0,
					0, 0, List.of());
		}
		long end = System.nanoTime();
		return new Result(true, null, usageIn >= 0 ? usageIn : p.inputTokens(), usageOut >= 0 ? usageOut : chunks,
				first < 0 ? (end - t0) / 1e6 : (first - t0) / 1e6, (end - t0) / 1e6, itl);
	}

	private static void closeQuietly(InputStream in) {
		try {
			in.close();
		}
		catch (IOException e) {
			// closing is all the watchdog does; the reader sees the stream end either way
		}
	}

	private static void progress(PrintWriter err, int done, int total) {
		int width = 30, filled = (int) ((long) done * width / total);
		err.print("\r[" + "#".repeat(filled) + " ".repeat(width - filled) + "] " + done + "/" + total);
		err.flush();
	}

	Map<String, Object> report(List<Result> results, double seconds) {
		List<Result> ok = results.stream().filter(Result::ok).toList();
		long in = ok.stream().mapToLong(Result::inputTokens).sum();
		long outTokens = ok.stream().mapToLong(Result::outputTokens).sum();
		double[] ttft = ok.stream().mapToDouble(Result::ttftMs).toArray();
		double[] e2el = ok.stream().mapToDouble(Result::e2elMs).toArray();
		double[] itl = ok.stream().flatMap(r -> r.itlMs().stream()).mapToDouble(Double::doubleValue).toArray();
		double[] tpot = ok.stream().filter(r -> r.outputTokens() > 1)
			.mapToDouble(r -> (r.e2elMs() - r.ttftMs()) / (r.outputTokens() - 1)).toArray();
		Map<String, Object> m = new LinkedHashMap<>();
		m.put("model_id", model);
		m.put("num_prompts", results.size());
		m.put("completed", ok.size());
		m.put("failed", results.size() - ok.size());
		m.put("errors", results.stream().filter(r -> !r.ok()).map(Result::error).distinct().limit(5).toList());
		m.put("duration", seconds);
		m.put("total_input_tokens", in);
		m.put("total_output_tokens", outTokens);
		m.put("request_throughput", ok.size() / seconds);
		m.put("output_throughput", outTokens / seconds);
		m.put("total_token_throughput", (in + outTokens) / seconds);
		m.put("max_concurrency", maxConcurrency);
		m.put("request_rate", requestRate);
		if (!goodput.isEmpty()) {
			m.put("request_goodput", ok.stream().filter(this::good).count() / seconds);
		}
		stats(m, "ttft", ttft);
		stats(m, "tpot", tpot);
		stats(m, "itl", itl);
		stats(m, "e2el", e2el);
		return m;
	}

	private boolean good(Result r) {
		for (String slo : goodput) {
			String[] kv = slo.split(":");
			double limit = Double.parseDouble(kv[1]);
			double v = switch (kv[0]) {
				case "ttft" -> r.ttftMs();
				case "e2el" -> r.e2elMs();
				case "tpot" -> r.outputTokens() > 1 ? (r.e2elMs() - r.ttftMs()) / (r.outputTokens() - 1) : 0;
				default -> throw new CommandLine.ParameterException(spec.commandLine(), "--goodput: unknown metric " + kv[0]);
			};
			if (v > limit) {
				return false;
			}
		}
		return true;
	}

	static void stats(Map<String, Object> m, String name, double[] v) {
		double[] s = v.clone();
		Arrays.sort(s);
		m.put("mean_" + name + "_ms", s.length == 0 ? 0 : Arrays.stream(s).average().orElse(0));
		m.put("median_" + name + "_ms", percentile(s, 50));
		m.put("p90_" + name + "_ms", percentile(s, 90));
		m.put("p99_" + name + "_ms", percentile(s, 99));
	}

	/** Linear interpolation between closest ranks, as numpy's percentile. */
	static double percentile(double[] sorted, double p) {
		if (sorted.length == 0) {
			return 0;
		}
		double rank = p / 100 * (sorted.length - 1);
		int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
		return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
	}

	static void print(PrintWriter out, Map<String, Object> m) {
		out.println("============ Serving Benchmark Result ============");
		m.forEach((k, v) -> {
			if (!k.equals("errors") || !((List<?>) v).isEmpty()) {
				out.printf("%-32s %s%n", k + ":", v instanceof Double d ? String.format("%.2f", d) : v);
			}
		});
		out.println("==================================================");
	}
}
