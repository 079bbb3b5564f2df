package dev.blockserve.config;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.ModelRuntime;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationListener;
import org.springframework.core.env.Environment;

/**
 * The one line an operator looks for once the server is up: where it listens (the base URL OpenAI
 * clients take, with /v1), the served name, the model folder, the device and the KV pool. Logged once,
 * on the starting thread, when Spring reports the application ready.
 */
final class ReadyLine implements ApplicationListener<ApplicationReadyEvent> {

	private static final Logger log = LoggerFactory.getLogger("dev.blockserve.Ready");

	private final ModelRuntime runtime;

	private final Engine engine;

	private final ServedModel served;

	ReadyLine(ModelRuntime runtime, Engine engine, ServedModel served) {
		this.runtime = runtime;
		this.engine = engine;
		this.served = served;
	}

	@Override
	public void onApplicationEvent(ApplicationReadyEvent event) {
		log.info(line(event.getApplicationContext().getEnvironment()));
	}

	String line(Environment env) {
		String host = env.getProperty("server.address", "0.0.0.0");
		String shown = host.equals("0.0.0.0") || host.equals("::") ? "localhost" : host;
		String port = env.getProperty("local.server.port", env.getProperty("server.port", "8000"));
		KvCacheMemory cache = runtime.cache();
		return String.format("blockserve ready: http://%s:%s/v1 (listening on %s) | model '%s' from %s | device %s | "
				+ "KV cache %,d blocks x %d tokens (%,d MiB %s, %,d tokens) | context %d tokens", shown, port, host,
				served.name(), served.directory(), runtime.backend().name(), cache.numBlocks(), cache.blockSize(),
				cache.bytes() >> 20, cache.dtype().toString().toLowerCase(java.util.Locale.ROOT),
				(long) cache.numBlocks() * cache.blockSize(), engine.maxModelLen());
	}
}
