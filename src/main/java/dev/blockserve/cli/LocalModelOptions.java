package dev.blockserve.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import dev.blockserve.backend.WeightType;
import dev.blockserve.hub.ModelResolver;
import dev.blockserve.model.ModelLoadException;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The options of the commands that load a model without a server ({@code generate}, {@code chat},
 * {@code perplexity}): which model, and how the local engine runs it. A picocli mixin; read by the
 * command's thread.
 */
final class LocalModelOptions {

	@Option(names = "--model", required = true, paramLabel = "DIR|ID",
			description = "a model directory (Hugging Face layout) or a Hugging Face repository id")
	String model;

	@Option(names = "--block-size", defaultValue = "16", description = "KV cache block size (default: ${DEFAULT-VALUE})")
	int blockSize;

	@Option(names = "--threads", defaultValue = "0", description = "kernel threads; 0 for all processors")
	int threads;

	@Option(names = "--dtype", defaultValue = "auto", paramLabel = "auto|bf16|f32",
			description = "weight matrices: as the checkpoint ships them, BF16 or F32 (default: ${DEFAULT-VALUE})")
	String dtype;

	@Option(names = "--offline", description = "never download (as HF_HUB_OFFLINE=1)")
	boolean offline;

	/** The model directory, or the Hugging Face id resolved through the cache or a download; a usage error otherwise. */
	Path resolve(CommandLine.Model.CommandSpec spec) {
		Path local = Path.of(model);
		if (Files.isDirectory(local)) {
			return local;
		}
		if (model.startsWith("/") || model.startsWith(".") || model.split("/").length != 2) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--model: " + model + " is not a directory (nor a Hugging Face id like org/name)");
		}
		Map<String, String> env = new HashMap<>(System.getenv());
		if (offline) {
			env.put("HF_HUB_OFFLINE", "1");
		}
		try {
			return new ModelResolver(env, spec.commandLine().getErr()::println).resolve(model);
		}
		catch (ModelLoadException e) {
			throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
		}
	}

	/** The model in {@code dir} on a local engine with these options. */
	LocalEngine open(Path dir) {
		return new LocalEngine(dir, threads, blockSize, WeightType.parse(dtype));
	}
}
