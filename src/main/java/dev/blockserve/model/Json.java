package dev.blockserve.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** Reads the small JSON files of a model directory. Stateless: any thread. */
public final class Json {

	public static final JsonMapper MAPPER = JsonMapper.builder().build();

	private Json() {
	}

	public static JsonNode read(Path file) {
		if (!Files.isRegularFile(file)) {
			throw new ModelLoadException(file + ": file not found");
		}
		try {
			return MAPPER.readTree(Files.readString(file));
		}
		catch (IOException | RuntimeException e) {
			throw new ModelLoadException(file + ": not valid JSON (" + e.getMessage() + ")", e);
		}
	}

	public static int[] ints(JsonNode n) {
		if (n == null || n.isNull() || n.isMissingNode()) {
			return new int[0];
		}
		if (n.isArray()) {
			int[] out = new int[n.size()];
			for (int i = 0; i < out.length; i++) {
				out[i] = n.get(i).asInt();
			}
			return out;
		}
		return new int[] { n.asInt() };
	}
}
