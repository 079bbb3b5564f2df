package dev.blockserve.weights;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tools.jackson.databind.JsonNode;
import dev.blockserve.backend.WeightPages;
import dev.blockserve.model.Json;
import dev.blockserve.model.ModelLoadException;

/**
 * The weights of a model directory: {@code model.safetensors}, or the shards listed by
 * {@code model.safetensors.index.json}. Finds each tensor in its file.
 * Opened at start-up; read by the engine thread; closed with the model.
 */
public final class ModelFiles implements AutoCloseable {

	private final Path dir;

	private final List<SafetensorsFile> files = new ArrayList<>();

	private final Map<String, SafetensorsFile> owner = new HashMap<>();

	public ModelFiles(Path dir) {
		this(dir, WeightPages.MAPPED);
	}

	/** @param pages how the files' bytes are held ({@link SafetensorsFile#open(Path, WeightPages)}) */
	public ModelFiles(Path dir, WeightPages pages) {
		this.dir = dir;
		try {
			Path index = dir.resolve("model.safetensors.index.json");
			Path single = dir.resolve("model.safetensors");
			if (Files.isRegularFile(index)) {
				JsonNode map = Json.read(index).path("weight_map");
				if (!map.isObject()) {
					throw new ModelLoadException(index + ": no weight_map object");
				}
				Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
				for (Map.Entry<String, JsonNode> e : map.properties()) {
					String shard = e.getValue().asString();
					SafetensorsFile f = byName.get(shard);
					if (f == null) {
						Path p = dir.resolve(shard);
						if (!Files.isRegularFile(p)) {
							throw new ModelLoadException(index + ": shard " + shard + " (tensor '" + e.getKey()
									+ "') not found in " + dir);
						}
						f = SafetensorsFile.open(p, pages);
						files.add(f);
						byName.put(shard, f);
					}
					if (!f.tensors().containsKey(e.getKey())) {
						throw new ModelLoadException(
								f.path() + ": tensor '" + e.getKey() + "' listed in " + index + " is not in the file");
					}
					owner.put(e.getKey(), f);
				}
			}
			else if (Files.isRegularFile(single)) {
				SafetensorsFile f = SafetensorsFile.open(single, pages);
				files.add(f);
				for (String name : f.tensors().keySet()) {
					owner.put(name, f);
				}
			}
			else {
				throw new ModelLoadException(dir + ": no model.safetensors or model.safetensors.index.json");
			}
		}
		catch (RuntimeException e) {
			close();
			throw e;
		}
	}

	/** How each file's bytes are held, for the start-up log: "model.safetensors mapped, 100% in 2 MiB pages". */
	public String placement() {
		StringBuilder sb = new StringBuilder();
		for (SafetensorsFile f : files) {
			sb.append(sb.isEmpty() ? "" : "; ").append(f.path().getFileName()).append(' ').append(f.placement());
		}
		return sb.toString();
	}

	public boolean has(String name) {
		return owner.containsKey(name);
	}

	public SafetensorsFile fileOf(String name) {
		SafetensorsFile f = owner.get(name);
		if (f == null) {
			throw new ModelLoadException(dir + ": tensor '" + name + "' is missing from the model's safetensors files");
		}
		return f;
	}

	public SafetensorsFile.Tensor tensor(String name) {
		return fileOf(name).tensors().get(name);
	}

	@Override
	public void close() {
		for (SafetensorsFile f : files) {
			f.close();
		}
		files.clear();
	}
}
