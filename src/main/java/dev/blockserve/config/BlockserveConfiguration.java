package dev.blockserve.config;

import java.nio.file.Path;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.CpuBackend;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.EngineConfig;
import dev.blockserve.engine.EngineListener;
import dev.blockserve.engine.ModelRuntime;
import dev.blockserve.scheduler.SchedulerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.beans.factory.ObjectProvider;
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
		CpuBackend b = new CpuBackend(props.threads());
		log.info("Backend: cpu, {} kernel threads", b.threads());
		return b;
	}

	@Bean(destroyMethod = "close")
	ModelRuntime modelRuntime(BlockserveProperties props, Backend backend) {
		if (props.model() == null || props.model().isBlank()) {
			throw new IllegalStateException("blockserve.model is not set: give the path of a model directory "
					+ "(config.json, model.safetensors, tokenizer.json), e.g. --blockserve.model=/models/SmolLM2-135M-Instruct");
		}
		var kv = props.kvCache();
		long t0 = System.nanoTime();
		ModelRuntime rt = new ModelRuntime(Path.of(props.model()), backend, props.maxModelLen(), kv.blockSize(),
				kv.numBlocks(), kv.memory().toBytes());
		var c = rt.model().config();
		log.info("Loaded model {} in {} ms: {} layers, hidden {}, heads {}/{}, vocab {}, context {}; KV cache {} blocks of {} tokens",
				rt.name(), (System.nanoTime() - t0) / 1_000_000, c.numLayers(), c.hiddenSize(), c.numHeads(),
				c.numKvHeads(), c.vocabSize(), rt.model().maxPositions(), rt.cache().numBlocks(), kv.blockSize());
		return rt;
	}

	@Bean(destroyMethod = "close")
	Engine engine(ModelRuntime runtime, BlockserveProperties props, ObjectProvider<EngineListener> listeners) {
		SchedulerConfig sc = props.scheduler().toConfig(SchedulerConfig.cpuDefaults());
		log.info("Scheduler: {} sequences, {} tokens per step, prefill chunks of {}, policy {}; prefix caching {}",
				sc.maxNumSeqs(), sc.maxNumBatchedTokens(), sc.longPrefillTokenThreshold(), sc.policy(),
				props.kvCache().prefixCaching() ? "on" : "off");
		return new Engine(runtime, new EngineConfig(sc, props.kvCache().prefixCaching()),
				listeners.getIfAvailable(() -> EngineListener.NONE));
	}

	@Bean
	HealthIndicator model(ModelRuntime runtime) {
		return () -> Health.up().withDetail("model", runtime.name()).build();
	}
}
