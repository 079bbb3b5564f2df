package dev.blockserve.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.Backends;
import dev.blockserve.backend.TransientThread;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.EngineConfig;
import dev.blockserve.engine.EngineListener;
import dev.blockserve.engine.ModelRuntime;
import dev.blockserve.engine.Warmup;
import dev.blockserve.hub.ModelResolver;
import dev.blockserve.scheduler.SchedulerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.SpringApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Wires the plain-Java core into Spring: backend, model runtime, health. */
@Configuration(proxyBeanMethods = false)
public class BlockserveConfiguration {

	private static final Logger log = LoggerFactory.getLogger(BlockserveConfiguration.class);

	@Bean(destroyMethod = "close")
	Backend backend(BlockserveProperties props) {
		Backend b = Backends.open(props.device(), props.threads(), props.cpuLevel(), props.bf16Activations(), log::info,
				log::warn);
		if (b instanceof dev.blockserve.backend.CpuBackend cpu) {
			cpu.weightPages(dev.blockserve.backend.WeightPages.parse(props.weightPages())).packedDecode(props.packedDecode());
		}
		return b;
	}

	@Bean
	ServedModel servedModel(BlockserveProperties props) {
		String spec = props.model();
		if (spec == null || spec.isBlank()) {
			throw new IllegalStateException("blockserve.model is empty: give a model directory or a Hugging Face "
					+ "repository id, e.g. --blockserve.model=" + BlockserveProperties.DEFAULT_MODEL);
		}
		Map<String, String> env = new HashMap<>(System.getenv());
		if (props.hubOffline()) {
			env.put("HF_HUB_OFFLINE", "1");
		}
		Path dir = new ModelResolver(env, log::info).resolve(spec);
		String name = props.servedModelName() != null && !props.servedModelName().isBlank() ? props.servedModelName()
				: Files.isDirectory(Path.of(spec)) ? dir.toAbsolutePath().normalize().getFileName().toString() : spec;
		return new ServedModel(name, dir);
	}

	@Bean(destroyMethod = "close")
	ModelRuntime modelRuntime(BlockserveProperties props, ServedModel served, Backend backend) {
		var kv = props.kvCache();
		long t0 = System.nanoTime();
		// loading may convert weights in parallel regions: not on this long-lived thread (TransientThread says why)
		ModelRuntime rt = TransientThread.call("blockserve-load",
				() -> new ModelRuntime(served.directory(), served.name(), backend, props.maxModelLen(), kv.blockSize(),
						kv.numBlocks(), kv.memory() == null ? -1 : kv.memory().toBytes(), kv.gpuMemoryUtilization(),
						dev.blockserve.backend.WeightType.parse(props.dtype()),
						dev.blockserve.backend.KvCacheMemory.parseType(kv.dtype())));
		if (rt.cacheSizing() != null) {
			log.info("KV cache budget sized to the model: {} (set blockserve.kv-cache.memory to choose)", rt.cacheSizing());
		}
		try {
			rt.fitContextToCache(props.maxModelLen() > 0, log::warn);
		}
		catch (RuntimeException e) {
			rt.close();
			throw e;
		}
		var c = rt.model().config();
		log.info("Loaded model {} in {} ms: {} layers, hidden {}, heads {}/{}, vocab {}, context {}; weights {} ({} MiB{}); "
				+ "KV cache {} blocks of {} tokens, {}; weight files: {}", rt.name(), (System.nanoTime() - t0) / 1_000_000, c.numLayers(),
				c.hiddenSize(), c.numHeads(), c.numKvHeads(), c.vocabSize(), rt.model().maxPositions(),
				rt.model().matrixType(), rt.model().weightBytes() >> 20,
				rt.model().packedBytes() > 0 ? ", and " + (rt.model().packedBytes() >> 20) + " MiB packed for batch-1 decode" : "",
				rt.cache().numBlocks(), kv.blockSize(),
				rt.cache().dtype().toString().toLowerCase(java.util.Locale.ROOT), rt.model().weightPlacement());
		return rt;
	}

	@Bean(destroyMethod = "close")
	Engine engine(ModelRuntime runtime, BlockserveProperties props, AdmissionProperties admission,
			ObjectProvider<EngineListener> listeners, ConfigurableApplicationContext context) {
		SchedulerConfig sc = props.scheduler()
			.toConfig(runtime.backend().kind().hasDeviceMemory() ? SchedulerConfig.gpuDefaults() : SchedulerConfig.cpuDefaults())
			.withSpeculative(props.speculative().toConfig());
		var spec = sc.speculative();
		log.info("Scheduler: {} sequences, {} tokens per step ({}), prefill chunks of {}, policy {}; prefix caching {}; {}",
				sc.maxNumSeqs(), sc.maxNumBatchedTokens(),
				sc.maxPrefillTokens() > 0 ? "prompts at most " + sc.maxPrefillTokens() + " besides decodes while any run" : "prompts and decodes",
				sc.longPrefillTokenThreshold(), sc.policy(),
				props.kvCache().prefixCaching() ? "on" : "off",
				spec.enabled() ? "speculative decoding: up to " + spec.numTokens() + " drafts by prompt lookup of "
						+ spec.lookupMin() + "-" + spec.lookupMax() + " tokens, at most " + spec.maxBatch() + " sequences"
						: "no speculative decoding");
		if (props.warmupTokens() > 0) {
			long ms = TransientThread.call("blockserve-warmup", () -> Warmup.run(runtime, sc, props.warmupTokens()));
			log.info("Warmed up in {} ms (two requests of up to {} new tokens)", ms, props.warmupTokens());
		}
		Engine engine = new Engine(runtime, new EngineConfig(sc, props.kvCache().prefixCaching(),
				admission.maxWaitingRequests(), admission.maxWaitingPromptTokens(), admission.stallTimeout()),
				listeners.getIfAvailable(() -> EngineListener.NONE));
		// A VM error on the engine thread leaves nothing to trust: exit non-zero for the supervisor to
		// restart us. From another thread, since exiting runs shutdown hooks that stop this engine.
		engine.onFatal(t -> new Thread(() -> System.exit(SpringApplication.exit(context, () -> 70)), "blockserve-fatal-exit")
			.start());
		return engine;
	}

	@Bean
	ReadyLine readyLine(ModelRuntime runtime, Engine engine, ServedModel served) {
		return new ReadyLine(runtime, engine, served);
	}

	@Bean
	HealthIndicator model(ModelRuntime runtime, Engine engine) {
		return () -> {
			String down = engine.downReason();
			return (down == null ? Health.up() : Health.down().withDetail("reason", down)).withDetail("model", runtime.name())
				.build();
		};
	}
}
