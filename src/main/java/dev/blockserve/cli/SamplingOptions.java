package dev.blockserve.cli;

import java.util.Map;

import dev.blockserve.engine.SamplingParams;
import picocli.CommandLine.Option;

/**
 * The sampling options of {@code generate} (applied to the local engine's request) and {@code bench} (sent
 * with every request, as vLLM's bench sends them): greedy unless a temperature is given; top-p, top-k and
 * min-p only when given. A picocli mixin; read by the command's thread.
 */
final class SamplingOptions {

	@Option(names = "--temperature", defaultValue = "0", description = "0 for greedy (default: ${DEFAULT-VALUE})")
	double temperature;

	@Option(names = "--top-p", description = "nucleus sampling (default: 1, all tokens)")
	Double topP;

	@Option(names = "--top-k", description = "keep the k most likely tokens (default: all)")
	Integer topK;

	@Option(names = "--min-p", description = "keep tokens at least this fraction as likely as the top one (default: 0)")
	Double minP;

	SamplingParams.Builder applyTo(SamplingParams.Builder b) {
		b.temperature(temperature);
		if (topP != null) {
			b.topP(topP);
		}
		if (topK != null) {
			b.topK(topK);
		}
		if (minP != null) {
			b.minP(minP);
		}
		return b;
	}

	/** The same as an OpenAI request body's fields. */
	void putInto(Map<String, Object> body) {
		body.put("temperature", temperature);
		if (topP != null) {
			body.put("top_p", topP);
		}
		if (topK != null) {
			body.put("top_k", topK);
		}
		if (minP != null) {
			body.put("min_p", minP);
		}
	}
}
