package dev.blockserve.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import dev.blockserve.constraint.Grammar;
import dev.blockserve.constraint.GrammarMatcher;
import dev.blockserve.constraint.GrammarRuntime;
import dev.blockserve.constraint.JsonSchemaCompiler;
import dev.blockserve.constraint.Schemas;
import dev.blockserve.constraint.TokenVocabulary;
import dev.blockserve.model.Json;
import dev.blockserve.toolcall.ToolGrammars;
import tools.jackson.databind.json.JsonMapper;

/**
 * The grammar engine's cost per step on a real-sized vocabulary: a byte-level BPE tokenizer of 49,152
 * tokens (the one {@code ../shared/tools/make_smol.py} writes, SmolLM2's size). For each of the ten test
 * schemas and a two-function tool call: the compile time, then generation as a sampler would drive it
 * (a fresh runtime per request, so its caches start cold; each step computes the mask, then a random
 * allowed token is accepted, preferring closing tokens half the time so outputs end), timing every
 * {@code mask()} on one thread. Reports median, p90, p99 and max per step, and how many steps computed
 * a mask rather than hitting the cache.
 * With {@code shared}, the requests of a grammar share one runtime, as the engine shares it between
 * requests with the same schema (so a state's first mask is computed once for all).
 * Run: java -cp "target/classes:target/test-classes:$CP" dev.blockserve.bench.GrammarMaskBenchmark DIR [requests=40] [fresh|shared]
 */
public final class GrammarMaskBenchmark {

	static boolean shared;

	public static void main(String[] args) {
		Path dir = Path.of(args[0]);
		int requests = args.length > 1 ? Integer.parseInt(args[1]) : 40;
		shared = args.length > 2 && args[2].equals("shared");
		long t0 = System.nanoTime();
		var json = Json.read(dir.resolve("tokenizer.json"));
		int vocabSize = Json.read(dir.resolve("config.json")).path("vocab_size").asInt();
		TokenVocabulary vocab = TokenVocabulary.fromTokenizerJson(json, vocabSize);
		long t1 = System.nanoTime();
		int eos = 0;
		for (var a : json.path("added_tokens")) {
			if (a.path("content").asString("").equals("<|im_end|>") || a.path("content").asString("").equals("<|endoftext|>")) {
				eos = a.path("id").asInt();
			}
		}
		System.out.printf("vocabulary %d tokens, trie %d nodes, built in %.0f ms (read + parse + trie)%n", vocab.size(),
				vocab.trieNodes(), (t1 - t0) / 1e6);
		JsonMapper m = JsonMapper.builder().build();
		List<String> names = new ArrayList<>();
		List<java.util.function.Supplier<Grammar>> grammars = new ArrayList<>();
		for (int k = 0; k < Schemas.TEN.size(); k++) {
			String s = Schemas.TEN.get(k);
			names.add("schema " + (k + 1));
			grammars.add(() -> JsonSchemaCompiler.compile(m.readTree(s)));
		}
		names.add("tool_choice required (2 functions)");
		grammars.add(() -> ToolGrammars.required(List.of(
				new ToolGrammars.Function("get_weather", m.readTree(
						"{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":[\"city\",\"unit\"]}")),
				new ToolGrammars.Function("add", m.readTree(
						"{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},\"required\":[\"a\",\"b\"]}"))),
				true));
		names.add("json_object");
		grammars.add(JsonSchemaCompiler::anyObjectGrammar);
		// warm-up: the JIT compiles the mask walk before anything is timed
		run(grammars.get(4).get(), vocab, eos, 20, 99, new ArrayList<>(), new long[2]);
		System.out.println();
		System.out.println("| grammar | compile ms (median of 20) | steps | mask ms median | p90 | p99 | max | masks computed |");
		System.out.println("|---|---|---|---|---|---|---|---|");
		List<Double> allTimes = new ArrayList<>();
		for (int g = 0; g < grammars.size(); g++) {
			double[] compile = new double[20];
			Grammar grammar = null;
			for (int i = 0; i < compile.length; i++) {
				long c0 = System.nanoTime();
				grammar = grammars.get(g).get();
				compile[i] = (System.nanoTime() - c0) / 1e6;
			}
			Arrays.sort(compile);
			List<Double> times = new ArrayList<>();
			long[] counts = new long[2];
			run(grammar, vocab, eos, requests, g, times, counts);
			allTimes.addAll(times);
			double[] t = times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
			System.out.printf("| %s | %.2f | %d | %.3f | %.3f | %.3f | %.2f | %d (%.1f%%) |%n", names.get(g), compile[10], t.length,
					pct(t, 50), pct(t, 90), pct(t, 99), t[t.length - 1], counts[0], 100.0 * counts[0] / t.length);
		}
		double[] t = allTimes.stream().mapToDouble(Double::doubleValue).sorted().toArray();
		System.out.printf("| all | | %d | %.3f | %.3f | %.3f | %.2f | |%n", t.length, pct(t, 50), pct(t, 90), pct(t, 99),
				t[t.length - 1]);
	}

	static double pct(double[] sorted, double p) {
		return sorted[Math.min(sorted.length - 1, (int) Math.floor(p / 100 * sorted.length))];
	}

	/** {@code requests} generations of at most 300 steps; mask times (ms) into {@code times}. */
	static void run(Grammar g, TokenVocabulary vocab, int eos, int requests, long seed, List<Double> times, long[] counts) {
		SplittableRandom rnd = new SplittableRandom(seed);
		GrammarRuntime one = new GrammarRuntime(g, vocab, new int[] { eos }, vocab.size());
		long computed = 0;
		for (int r = 0; r < requests; r++) {
			GrammarRuntime rt = shared ? one : new GrammarRuntime(g, vocab, new int[] { eos }, vocab.size());
			long before = rt.maskComputations();
			GrammarMatcher matcher = rt.matcher();
			int[] allowed = new int[vocab.size()];
			int[] closing = new int[vocab.size()];
			for (int step = 0; step < 300; step++) {
				long s0 = System.nanoTime();
				long[] mask = matcher.mask();
				times.add((System.nanoTime() - s0) / 1e6);
				int na = 0;
				int nc = 0;
				for (int w = 0; w < mask.length; w++) {
					for (long bits = mask[w]; bits != 0; bits &= bits - 1) {
						int tok = (w << 6) + Long.numberOfTrailingZeros(bits);
						allowed[na++] = tok;
						byte[] b = vocab.bytes(tok);
						if (tok == eos || (b != null && b.length > 0 && isClosing(b[b.length - 1]))) {
							closing[nc++] = tok;
						}
					}
				}
				int tok = nc > 0 && rnd.nextBoolean() ? closing[rnd.nextInt(nc)] : allowed[rnd.nextInt(na)];
				if (tok == eos || !matcher.accept(tok) || matcher.isTerminated()) {
					break;
				}
			}
			computed += rt.maskComputations() - before;
		}
		counts[0] += computed;
	}

	static boolean isClosing(byte b) {
		return b == '"' || b == '}' || b == ']' || (b >= '0' && b <= '9') || b == 'e' || b == 'l';
	}
}
