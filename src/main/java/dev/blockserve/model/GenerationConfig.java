package dev.blockserve.model;

import java.nio.file.Files;
import java.nio.file.Path;

/** What {@code generation_config.json} says about stopping: its EOS ids, else those of config.json. Immutable. */
public record GenerationConfig(int[] eosTokenIds) {

	public static GenerationConfig read(Path dir, ModelConfig config) {
		Path f = dir.resolve("generation_config.json");
		if (Files.isRegularFile(f)) {
			int[] eos = Json.ints(Json.read(f).get("eos_token_id"));
			if (eos.length > 0) {
				return new GenerationConfig(eos);
			}
		}
		return new GenerationConfig(config.eosTokenIds());
	}

	public boolean isEos(int token) {
		for (int e : eosTokenIds) {
			if (e == token) {
				return true;
			}
		}
		return false;
	}
}
