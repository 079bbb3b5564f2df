package dev.blockserve.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.WeightPages;
import dev.blockserve.backend.WeightType;
import dev.blockserve.hub.ModelResolver;
import dev.blockserve.model.ModelLoadException;
import picocli.CommandLine;
import dev.blockserve.scheduler.SpeculativeConfig;
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

	@Option(names = "--weight-pages", defaultValue = "auto", paramLabel = "auto|huge|mapped",
			description = "where the weights are read from: the file's mapping when the page cache holds it in 2 MiB pages, "
					+ "else a copy in huge pages (auto); always the copy (huge); always the mapping (mapped) (default: ${DEFAULT-VALUE})")
	String weightPages;

	@Option(names = "--kv-cache-dtype", defaultValue = "f32", paramLabel = "f32|bf16|f16",
			description = "the KV cache's values: F32 (exact), or BF16/F16 (half the memory) (default: ${DEFAULT-VALUE})")
	String kvCacheDtype;

	@Option(names = "--speculative-tokens", defaultValue = "0", paramLabel = "N",
			description = "draft up to N tokens by prompt lookup (2- to 4-token n-grams of the prompt and output) and verify "
					+ "them in one step: the same output (greedy or seeded) in fewer steps; 0 for off (default: ${DEFAULT-VALUE})")
	int speculativeTokens;

	@Option(names = "--offline", description = "never download (as HF_HUB_OFFLINE=1)")
	boolean offline;

	/**
	 * The model directory, or the Hugging Face id resolved through the cache or a download; a usage error
	 * otherwise, or when a type option names no type.
	 */
	Path resolve(CommandLine.Model.CommandSpec spec) {
		try {
			WeightType.parse(dtype);
		}
		catch (IllegalArgumentException e) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--dtype must be auto, bf16 or f32, got '" + dtype + "'");
		}
		try {
			WeightPages.parse(weightPages);
		}
		catch (IllegalArgumentException e) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--weight-pages must be auto, huge or mapped, got '" + weightPages + "'");
		}
		try {
			KvCacheMemory.parseType(kvCacheDtype);
		}
		catch (IllegalArgumentException e) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--kv-cache-dtype must be f32, bf16 or f16, got '" + kvCacheDtype + "'");
		}
		if (speculativeTokens < 0 || speculativeTokens > 64) {
			throw new CommandLine.ParameterException(spec.commandLine(),
					"--speculative-tokens must be in 0..64, got " + speculativeTokens);
		}
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
		return new LocalEngine(dir, threads, blockSize, WeightType.parse(dtype), WeightPages.parse(weightPages),
				KvCacheMemory.parseType(kvCacheDtype), new SpeculativeConfig(speculativeTokens, 2, 4, 4));
	}
}
