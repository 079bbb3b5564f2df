package dev.blockserve.metrics;

import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

import dev.blockserve.engine.Engine;
import dev.blockserve.engine.EngineListener;
import dev.blockserve.engine.FinishReason;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;

/**
 * The metrics an operator of vLLM expects, under blockserve_* names (Prometheus naming by Micrometer:
 * counters get _total, timers _seconds), each tagged with the served model's name. Event meters are fed
 * by the engine thread through {@link EngineListener}; gauges read the engine's published state when
 * scraped. Every meter is created up front, so the engine thread only increments and records.
 */
public final class EngineMetrics implements EngineListener {

	// Bucket bounds as vLLM uses them, in seconds.
	static final double[] TTFT = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
			10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0 };

	static final double[] ITL = { 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
			20.0, 40.0, 80.0 };

	static final double[] REQUEST = { 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
			120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0 };

	/** Grammar mask times: a cached mask is microseconds, a walk of a large vocabulary milliseconds. */
	static final double[] GRAMMAR_MASK = { 0.00001, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1 };

	static final double[] ITERATION_TOKENS = { 1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384 };

	static final double[] ITERATION_SEQS = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };

	private final Tags tags;

	private final Counter promptTokens;

	private final Counter generationTokens;

	private final Counter preemptions;

	private final Counter draftTokens;

	private final Counter acceptedTokens;

	private final Counter stop;

	private final Counter length;

	private final Counter abort;

	private final Timer ttft;

	private final Timer itl;

	private final Timer e2e;

	private final Timer queue;

	private final Timer prefill;

	private final Timer decode;

	private final DistributionSummary iterationTokens;

	/** The model's forward pass of each step (vLLM's model_forward_time): against ITL, what serving adds. */
	private final Timer forward;

	private final DistributionSummary iterationSeqs;

	private final DistributionSummary requestPromptTokens;

	private final DistributionSummary requestGenerationTokens;

	private final DistributionSummary requestN;

	private final DistributionSummary requestMaxTokens;

	private final Timer inference;

	private final Timer maskComputed;

	private final Timer maskCached;

	/** vLLM's 1-2-5 buckets up to {@code max}. */
	static double[] oneTwoFive(int max) {
		java.util.List<Double> b = new java.util.ArrayList<>();
		for (long exp = 1; exp <= max; exp *= 10) {
			for (int m : new int[] { 1, 2, 5 }) {
				if (m * exp <= max) {
					b.add((double) (m * exp));
				}
			}
		}
		return b.stream().mapToDouble(Double::doubleValue).toArray();
	}

	public EngineMetrics(MeterRegistry registry, String modelName) {
		this(registry, modelName, 1 << 20);
	}

	/** @param maxModelLen the served context, which bounds the per-request token histograms */
	public EngineMetrics(MeterRegistry registry, String modelName, int maxModelLen) {
		tags = Tags.of("model_name", modelName);
		promptTokens = Counter.builder("blockserve.prompt.tokens").description("Prompt tokens processed").tags(tags)
			.register(registry);
		generationTokens = Counter.builder("blockserve.generation.tokens").description("Tokens generated").tags(tags)
			.register(registry);
		preemptions = Counter.builder("blockserve.num.preemptions").description("Sequences preempted (recomputed later)")
			.tags(tags).register(registry);
		// vLLM's spec_decode_num_draft_tokens / num_accepted_tokens: their ratio is the acceptance rate
		draftTokens = Counter.builder("blockserve.spec.decode.draft.tokens")
			.description("Draft tokens proposed by prompt lookup and verified").tags(tags).register(registry);
		acceptedTokens = Counter.builder("blockserve.spec.decode.accepted.tokens")
			.description("Draft tokens accepted (each one a decode step saved)").tags(tags).register(registry);
		stop = success(registry, "stop");
		length = success(registry, "length");
		abort = success(registry, "abort");
		ttft = timer(registry, "blockserve.time.to.first.token", "Time from arrival to the first token", TTFT);
		itl = timer(registry, "blockserve.inter.token.latency", "Time between consecutive tokens of a sequence", ITL);
		e2e = timer(registry, "blockserve.e2e.request.latency", "Time from arrival to the last token", REQUEST);
		queue = timer(registry, "blockserve.request.queue.time", "Time from arrival to first scheduled", REQUEST);
		prefill = timer(registry, "blockserve.request.prefill.time", "Time from first scheduled to first token", REQUEST);
		decode = timer(registry, "blockserve.request.decode.time", "Time from first token to last token", REQUEST);
		iterationTokens = DistributionSummary.builder("blockserve.iteration.tokens").description("Tokens per engine step")
			.tags(tags).serviceLevelObjectives(ITERATION_TOKENS).register(registry);
		forward = timer(registry, "blockserve.model.forward.time", "The model's forward pass of an engine step", ITL);
		iterationSeqs = DistributionSummary.builder("blockserve.iteration.seqs").description("Sequences per engine step")
			.tags(tags).serviceLevelObjectives(ITERATION_SEQS).register(registry);
		double[] tokens = oneTwoFive(maxModelLen);
		requestPromptTokens = summary(registry, "blockserve.request.prompt.tokens", "Prompt tokens per finished request", tokens);
		requestGenerationTokens = summary(registry, "blockserve.request.generation.tokens",
				"Generated tokens per finished request, all choices", tokens);
		requestN = summary(registry, "blockserve.request.params.n", "The n parameter of finished requests",
				new double[] { 1, 2, 5, 10, 20 });
		requestMaxTokens = summary(registry, "blockserve.request.params.max.tokens",
				"The max_tokens of finished requests (the rest of the context when not given)", tokens);
		inference = timer(registry, "blockserve.request.inference.time", "Time from first scheduled to the end", REQUEST);
		maskComputed = grammarTimer(registry, "computed");
		maskCached = grammarTimer(registry, "cached");
	}

	private Timer grammarTimer(MeterRegistry registry, String result) {
		return Timer.builder("blockserve.grammar.mask").description(
				"Time to make one constrained sequence's token mask on the engine thread, by whether it was computed or cached")
			.tags(tags).tag("result", result)
			.serviceLevelObjectives(Arrays.stream(GRAMMAR_MASK).mapToObj(s -> Duration.ofNanos((long) (s * 1e9)))
				.toArray(Duration[]::new))
			.register(registry);
	}

	private DistributionSummary summary(MeterRegistry registry, String name, String description, double[] buckets) {
		return DistributionSummary.builder(name).description(description).tags(tags).serviceLevelObjectives(buckets)
			.register(registry);
	}

	private Counter success(MeterRegistry registry, String reason) {
		return Counter.builder("blockserve.request.success").description("Finished requests by finish reason")
			.tags(tags).tag("finished_reason", reason).register(registry);
	}

	private Timer timer(MeterRegistry registry, String name, String description, double[] bucketsSeconds) {
		return Timer.builder(name).description(description).tags(tags)
			.serviceLevelObjectives(Arrays.stream(bucketsSeconds).mapToObj(s -> Duration.ofNanos((long) (s * 1e9)))
				.toArray(Duration[]::new))
			.register(registry);
	}

	/** The gauges and function counters that read the engine's published state. */
	public void bind(MeterRegistry registry, Engine engine) {
		Gauge.builder("blockserve.num.requests.running", engine, Engine::numRunning)
			.description("Sequences running on the engine").tags(tags).register(registry);
		Gauge.builder("blockserve.num.requests.waiting", engine, Engine::numWaiting)
			.description("Sequences waiting to be scheduled").tags(tags).register(registry);
		Gauge.builder("blockserve.kv.cache.usage.perc", engine, e -> e.engineSnapshot().kv().usage())
			.description("Fraction of KV cache blocks in use (0..1)").tags(tags).register(registry);
		Gauge.builder("blockserve.kv.cache.blocks", engine, e -> e.engineSnapshot().kv().used()).tags(tags).tag("state", "used")
			.description("KV cache blocks by state").register(registry);
		Gauge.builder("blockserve.kv.cache.blocks", engine, e -> e.engineSnapshot().kv().cached()).tags(tags).tag("state", "cached")
			.description("KV cache blocks by state").register(registry);
		Gauge.builder("blockserve.kv.cache.blocks", engine, e -> e.engineSnapshot().kv().free()).tags(tags).tag("state", "free")
			.description("KV cache blocks by state").register(registry);
		FunctionCounter.builder("blockserve.prefix.cache.queries", engine, e -> e.engineSnapshot().kv().prefixQueryTokens())
			.description("Prompt tokens looked up in the prefix cache").tags(tags).register(registry);
		FunctionCounter.builder("blockserve.prefix.cache.hits", engine, e -> e.engineSnapshot().kv().prefixHitTokens())
			.description("Prompt tokens served from the prefix cache").tags(tags).register(registry);
		// vLLM's cache_config_info: a constant 1 whose labels describe the KV cache
		var cache = engine.runtime().cache();
		Gauge.builder("blockserve.cache.config.info", () -> 1)
			.description("KV cache configuration (labels)")
			.tags(tags)
			.tag("block_size", Integer.toString(cache.blockSize()))
			.tag("num_blocks", Integer.toString(cache.numBlocks()))
			.tag("cache_dtype", cache.dtype().torchName())
			.tag("enable_prefix_caching", Boolean.toString(engine.config().prefixCaching()))
			.tag("sliding_window", Integer.toString(engine.runtime().model().config().features().maxWindow()))
			.tag("device", engine.runtime().backend().name())
			.register(registry);
	}

	@Override
	public void onRequestFinished(int prompt, int generated, int n, int maxTokens, long inferenceNanos) {
		requestPromptTokens.record(prompt);
		requestGenerationTokens.record(generated);
		requestN.record(n);
		requestMaxTokens.record(maxTokens);
		inference.record(inferenceNanos, TimeUnit.NANOSECONDS);
	}

	@Override
	public void onStep(int tokens, int seqs, long nanos) {
		iterationTokens.record(tokens);
		iterationSeqs.record(seqs);
		forward.record(nanos, TimeUnit.NANOSECONDS);
	}

	@Override
	public void onGrammarMask(long nanos, boolean computed) {
		(computed ? maskComputed : maskCached).record(nanos, TimeUnit.NANOSECONDS);
	}

	@Override
	public void onSpeculation(int drafted, int accepted) {
		draftTokens.increment(drafted);
		acceptedTokens.increment(accepted);
	}

	@Override
	public void onPreemption() {
		preemptions.increment();
	}

	@Override
	public void onFirstToken(long queueNanos, long ttftNanos, long prefillNanos, int prompt) {
		queue.record(queueNanos, TimeUnit.NANOSECONDS);
		ttft.record(ttftNanos, TimeUnit.NANOSECONDS);
		prefill.record(prefillNanos, TimeUnit.NANOSECONDS);
		promptTokens.increment(prompt);
	}

	@Override
	public void onToken(long interTokenNanos) {
		generationTokens.increment();
		if (interTokenNanos >= 0) {
			itl.record(interTokenNanos, TimeUnit.NANOSECONDS);
		}
	}

	@Override
	public void onFinished(FinishReason finishReason, long e2eNanos, long decodeNanos, int prompt, int completion) {
		switch (finishReason) {
			case STOP -> stop.increment();
			case LENGTH -> length.increment();
			default -> abort.increment();
		}
		e2e.record(e2eNanos, TimeUnit.NANOSECONDS);
		decode.record(decodeNanos, TimeUnit.NANOSECONDS);
	}
}
