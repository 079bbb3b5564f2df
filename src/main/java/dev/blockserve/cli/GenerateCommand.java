package dev.blockserve.cli;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.GenerationConfig;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.TextTokenizer;

/**
 * {@code blockserve generate}: load a model and generate greedily from text or token ids, without HTTP.
 * Example: {@code generate --model DIR --prompt-ids 1,403,407 --max-tokens 24 --temperature 0 --ignore-eos --print-ids}
 */
public final class GenerateCommand {

	static final String USAGE = """
			usage: blockserve generate --model DIR (--prompt TEXT | --prompt-ids ID,ID,...) [options]
			  --max-tokens N     new tokens to generate (default 64)
			  --temperature T    only 0 (greedy) is offered offline; sampling is served by the engine
			  --ignore-eos       keep generating past the model's EOS tokens
			  --print-ids        print the generated token ids instead of text
			  --block-size N     KV cache block size (default 16)
			  --threads N        kernel threads (default: all processors)
			""";

	private GenerateCommand() {
	}

	/** Runs the command; returns the process exit code. */
	public static int run(String[] args, PrintStream out, PrintStream err) {
		Path model = null;
		String prompt = null;
		int[] promptIds = null;
		int maxTokens = 64;
		int blockSize = 16;
		int threads = 0;
		boolean ignoreEos = false;
		boolean printIds = false;
		ArrayDeque<String> a = new ArrayDeque<>(Arrays.asList(args));
		try {
			while (!a.isEmpty()) {
				String opt = a.poll();
				switch (opt) {
					case "--model" -> model = Path.of(value(a, opt));
					case "--prompt" -> prompt = value(a, opt);
					case "--prompt-ids" -> promptIds = parseIds(value(a, opt));
					case "--max-tokens" -> maxTokens = positive(value(a, opt), opt);
					case "--block-size" -> blockSize = positive(value(a, opt), opt);
					case "--threads" -> threads = Integer.parseInt(value(a, opt));
					case "--temperature" -> {
						if (Double.parseDouble(value(a, opt)) != 0) {
							throw new IllegalArgumentException(
									"--temperature: only 0 (greedy) is supported by the offline command");
						}
					}
					case "--ignore-eos" -> ignoreEos = true;
					case "--print-ids" -> printIds = true;
					case "-h", "--help" -> {
						out.print(USAGE);
						return 0;
					}
					default -> throw new IllegalArgumentException("unknown option " + opt);
				}
			}
			if (model == null || (prompt == null) == (promptIds == null)) {
				throw new IllegalArgumentException("give --model and exactly one of --prompt, --prompt-ids");
			}
			if (!Files.isDirectory(model)) {
				throw new IllegalArgumentException("--model: " + model + " is not a directory");
			}
		}
		catch (IllegalArgumentException e) {
			err.println("error: " + e.getMessage());
			err.print(USAGE);
			return 2;
		}
		try (CpuBackend backend = new CpuBackend(threads);
				LlamaModel m = LlamaModel.load(model, backend, 0);
				TextTokenizer tok = TextTokenizer.load(model)) {
			int[] ids = promptIds != null ? promptIds : tok.encode(prompt, true);
			int blocks = (m.maxPositions() + blockSize - 1) / blockSize;
			SamplingParams params = SamplingParams.greedy(maxTokens).toBuilder().ignoreEos(ignoreEos).build();
			try (KvCacheMemory cache = m.newKvCache(blocks, blockSize);
					OfflineGenerator gen = new OfflineGenerator(m, cache,
							new KvCacheManager(new BlockPool(blocks, blockSize), true, model.toString(),
									m.config().features().maxWindow()),
							OfflineGenerator.batchConfig(512), tok, GenerationConfig.read(model, m.config()))) {
				long t0 = System.nanoTime();
				OfflineGenerator.Result r = gen.generate(List.of(ids), params).get(0);
				double secs = (System.nanoTime() - t0) / 1e9;
				if (printIds) {
					out.println(Arrays.stream(r.tokens()).mapToObj(Integer::toString).collect(Collectors.joining(",")));
				}
				else {
					out.println(tok.decodeContinuation(ids, r.tokens()));
				}
				err.printf("[%d prompt + %d new tokens in %.2f s, finish: %s]%n", ids.length, r.tokens().length, secs,
						r.finishReason().openAi());
			}
			return 0;
		}
		catch (RuntimeException e) {
			err.println("error: " + e.getMessage());
			return 1;
		}
	}

	private static String value(ArrayDeque<String> a, String opt) {
		String v = a.poll();
		if (v == null) {
			throw new IllegalArgumentException(opt + " needs a value");
		}
		return v;
	}

	private static int positive(String v, String opt) {
		int n = Integer.parseInt(v);
		if (n <= 0) {
			throw new IllegalArgumentException(opt + " must be positive");
		}
		return n;
	}

	static int[] parseIds(String s) {
		try {
			return Arrays.stream(s.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
		}
		catch (NumberFormatException e) {
			throw new IllegalArgumentException("--prompt-ids: '" + s + "' is not a comma-separated list of integers");
		}
	}
}
