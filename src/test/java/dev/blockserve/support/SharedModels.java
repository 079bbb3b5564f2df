package dev.blockserve.support;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Assumptions;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The real test models beside the checkout ({@code ../shared/models}). Tests that need them call
 * {@link #dir}, which skips the test with a visible reason where the folder is absent (a user's own
 * clone); CI has it, so nothing is skipped there.
 */
public final class SharedModels {

	public static final Path ROOT = locate();

	private SharedModels() {
	}

	private static Path locate() {
		String p = System.getProperty("blockserve.shared.models");
		if (p != null) {
			return Path.of(p);
		}
		return Path.of("..", "shared", "models").toAbsolutePath().normalize();
	}

	/** For {@code @EnabledIf}: whether the shared test models are present. */
	public static boolean present() {
		return Files.isDirectory(ROOT.resolve("stories260K"));
	}

	public static Path dir(String model) {
		Path d = ROOT.resolve(model);
		Assumptions.assumeTrue(Files.isDirectory(d),
				"skipped: test model " + d + " is not present (it lives in ../shared/models beside the checkout)");
		return d;
	}

	/** One golden case of {@code golden.json}. */
	public record GoldenCase(String promptText, int[] promptIds, int[] greedyIds, int[] greedyIdsIgnoreEos24,
			float[] firstStepLogits, String completionText) {
	}

	public static List<GoldenCase> golden(String model) {
		JsonNode root = JsonMapper.builder().build().readTree(dir(model).resolve("golden.json").toFile());
		List<GoldenCase> out = new ArrayList<>();
		for (JsonNode c : root.path("cases")) {
			float[] l = floats(c.path("first_step_logits"));
			out.add(new GoldenCase(c.path("prompt_text").asString(null), ints(c.path("prompt_ids")),
					ints(c.path("greedy_ids")), c.has("greedy_ids_ignore_eos_24") ? ints(c.get("greedy_ids_ignore_eos_24")) : null,
					l, c.path("completion_text").asString(null)));
		}
		return out;
	}

	/** A JSON array of integers. */
	public static int[] ints(JsonNode n) {
		int[] a = new int[n.size()];
		for (int i = 0; i < a.length; i++) {
			a[i] = n.get(i).asInt();
		}
		return a;
	}

	/** A JSON array of numbers, as floats. */
	public static float[] floats(JsonNode n) {
		float[] a = new float[n.size()];
		for (int i = 0; i < a.length; i++) {
			a[i] = (float) n.get(i).asDouble();
		}
		return a;
	}

	/** log softmax of {@code logits} at {@code token}, in double: the reference for a logprob. */
	public static double logSoftmax(float[] logits, int token) {
		double max = Double.NEGATIVE_INFINITY, sum = 0;
		for (float v : logits) {
			max = Math.max(max, v);
		}
		for (float v : logits) {
			sum += Math.exp(v - max);
		}
		return logits[token] - max - Math.log(sum);
	}
}
