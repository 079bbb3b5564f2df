package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.StepInput;

/**
 * Greedy generation for a fixed set of prompts, all in one batch: every step carries each unfinished
 * sequence's next prompt chunk (at most {@code prefillChunk} tokens) or its last generated token. Blocks
 * come from a {@link BlockSource}, one at a time as a sequence grows, and go back when it ends. This is
 * the offline mode of the command line and the reference harness of the golden tests.
 */
public final class OfflineGenerator {

	/** Hands out physical block ids of the cache and takes them back. */
	public interface BlockSource {

		int allocate();

		void free(int block);
	}

	/** One prompt's outcome: its new tokens, the logits that chose the first of them, why it ended. */
	public record Result(int[] tokens, float[] firstLogits, String finishReason) {
	}

	private final LlamaModel model;

	private final KvCacheMemory cache;

	private final BlockSource blocks;

	private final StepInput step = new StepInput();

	public OfflineGenerator(LlamaModel model, KvCacheMemory cache, BlockSource blocks) {
		this.model = model;
		this.cache = cache;
		this.blocks = blocks;
	}

	private static final class Seq {

		final int[] prompt;

		int[] tokens;

		int length;

		int computed;

		int[] table = new int[4];

		int numBlocks;

		float[] firstLogits;

		String finish;

		Seq(int[] prompt) {
			this.prompt = prompt;
			this.tokens = Arrays.copyOf(prompt, prompt.length + 16);
			this.length = prompt.length;
		}
	}

	/**
	 * @param stopIds tokens that end a sequence (empty to ignore EOS)
	 * @param prefillChunk the most prompt tokens a sequence brings to one step
	 */
	public List<Result> generate(List<int[]> prompts, int maxNewTokens, int[] stopIds, int prefillChunk) {
		if (maxNewTokens < 1 || prefillChunk < 1) {
			throw new IllegalArgumentException("maxNewTokens and prefillChunk must be positive");
		}
		List<Seq> seqs = new ArrayList<>();
		for (int[] p : prompts) {
			if (p.length == 0) {
				throw new IllegalArgumentException("empty prompt");
			}
			if (p.length + maxNewTokens > model.maxPositions()) {
				throw new IllegalArgumentException("prompt of " + p.length + " tokens plus " + maxNewTokens
						+ " new tokens exceeds the context length " + model.maxPositions());
			}
			seqs.add(new Seq(p));
		}
		int vocab = model.config().vocabSize();
		int maxBlocks = (model.maxPositions() + cache.blockSize() - 1) / cache.blockSize();
		List<Seq> active = new ArrayList<>(seqs);
		int[] sampled = new int[seqs.size()];
		float[] logits = null;
		try {
			while (!active.isEmpty()) {
				step.reset(cache.blockSize(), maxBlocks);
				for (Seq s : active) {
					int count = s.computed < s.prompt.length ? Math.min(prefillChunk, s.prompt.length - s.computed) : 1;
					grow(s, s.computed + count);
					step.addSequence(s.tokens, s.computed, count, s.computed, s.table, s.numBlocks);
					s.computed += count;
				}
				NativeBuffer out = model.forward(step, cache);
				model.argmax(active.size(), sampled);
				boolean logitsRead = false;
				for (int i = active.size() - 1; i >= 0; i--) {
					Seq s = active.get(i);
					if (s.computed < s.length) {
						continue; // prompt not finished: this step's logits are not a prediction
					}
					if (s.firstLogits == null) {
						if (!logitsRead) {
							if (logits == null || logits.length < active.size() * vocab) {
								logits = new float[active.size() * vocab];
							}
							model.backend().download(out, logits, active.size() * vocab);
							logitsRead = true;
						}
						s.firstLogits = Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
					}
					append(s, sampled[i]);
					if (contains(stopIds, sampled[i])) {
						s.finish = "stop";
					}
					else if (s.length - s.prompt.length >= maxNewTokens) {
						s.finish = "length";
					}
					if (s.finish != null) {
						release(s);
						active.remove(i);
					}
				}
			}
		}
		finally {
			for (Seq s : active) {
				release(s);
			}
		}
		List<Result> out = new ArrayList<>();
		for (Seq s : seqs) {
			out.add(new Result(Arrays.copyOfRange(s.tokens, s.prompt.length, s.length), s.firstLogits, s.finish));
		}
		return out;
	}

	private void grow(Seq s, int tokens) {
		int need = (tokens + cache.blockSize() - 1) / cache.blockSize();
		if (need > s.table.length) {
			s.table = Arrays.copyOf(s.table, Math.max(need, s.table.length * 2));
		}
		while (s.numBlocks < need) {
			s.table[s.numBlocks++] = blocks.allocate();
		}
	}

	private static void append(Seq s, int token) {
		if (s.length == s.tokens.length) {
			s.tokens = Arrays.copyOf(s.tokens, s.tokens.length * 2);
		}
		s.tokens[s.length++] = token;
	}

	private void release(Seq s) {
		for (int b = 0; b < s.numBlocks; b++) {
			blocks.free(s.table[b]);
		}
		s.numBlocks = 0;
	}

	private static boolean contains(int[] a, int v) {
		for (int x : a) {
			if (x == v) {
				return true;
			}
		}
		return false;
	}
}
