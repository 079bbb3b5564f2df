package dev.blockserve.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.kvcache.BlockTable;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.kvcache.PrefixMatch;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.StepInput;

/**
 * Greedy generation for a fixed set of prompts, all in one batch: every step carries each unfinished
 * sequence's next prompt chunk (at most {@code prefillChunk} tokens) or its last generated token. Blocks
 * come from the {@link KvCacheManager}, so prompts reuse cached prefixes; a prompt whose blocks do not fit
 * fails the call (serving with preemption is the scheduler's job). This is the offline mode of the
 * command line and the harness of the golden tests.
 */
public final class OfflineGenerator {

	/** One prompt's outcome: its new tokens, the logits that chose the first of them, why it ended. */
	public record Result(int[] tokens, float[] firstLogits, String finishReason, int cachedPromptTokens) {
	}

	private final LlamaModel model;

	private final KvCacheMemory cache;

	private final KvCacheManager blocks;

	private final StepInput step = new StepInput();

	private final PrefixMatch match = new PrefixMatch();

	private long nextId;

	public OfflineGenerator(LlamaModel model, KvCacheMemory cache, KvCacheManager blocks) {
		if (blocks.blockSize() != cache.blockSize() || blocks.pool().numBlocks() > cache.numBlocks()) {
			throw new IllegalArgumentException("block manager and cache memory disagree on block size or count");
		}
		this.model = model;
		this.cache = cache;
		this.blocks = blocks;
	}

	private static final class Seq {

		final int[] prompt;

		int[] tokens;

		int length;

		int computed;

		int cachedPrompt;

		BlockTable table;

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
		int bs = cache.blockSize();
		int maxBlocks = KvCacheManager.blocksFor(model.maxPositions(), bs);
		List<Seq> active = new ArrayList<>(seqs);
		int[] sampled = new int[seqs.size()];
		float[] logits = null;
		try {
			for (Seq s : active) {
				s.table = blocks.newTable(nextId++);
				blocks.matchPrefix(s.prompt, s.prompt.length, match);
				require(blocks.allocate(s.table, match.cachedTokens(bs), match));
				s.computed = s.cachedPrompt = match.cachedTokens(bs);
			}
			while (!active.isEmpty()) {
				step.reset(bs, maxBlocks);
				for (Seq s : active) {
					int count = s.computed < s.prompt.length ? Math.min(prefillChunk, s.prompt.length - s.computed) : 1;
					require(blocks.allocate(s.table, s.computed + count, null));
					step.addSequence(s.tokens, s.computed, count, s.computed, s.table.array(), s.table.size());
					s.computed += count;
				}
				NativeBuffer out = model.forward(step, cache);
				model.argmax(active.size(), sampled);
				boolean logitsRead = false;
				for (int i = active.size() - 1; i >= 0; i--) {
					Seq s = active.get(i);
					blocks.commit(s.table, s.tokens, s.computed);
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
						blocks.free(s.table);
						active.remove(i);
					}
				}
			}
		}
		finally {
			for (Seq s : active) {
				if (s.table != null && blocks.table(s.table.requestId()) == s.table) {
					blocks.free(s.table);
				}
			}
		}
		List<Result> out = new ArrayList<>();
		for (Seq s : seqs) {
			out.add(new Result(Arrays.copyOfRange(s.tokens, s.prompt.length, s.length), s.firstLogits, s.finish,
					s.cachedPrompt));
		}
		return out;
	}

	private void require(boolean allocated) {
		if (!allocated) {
			throw new IllegalStateException("the KV cache (" + blocks.pool().numBlocks()
					+ " blocks) cannot hold this batch; use fewer or shorter prompts or a larger cache");
		}
	}

	private static void append(Seq s, int token) {
		if (s.length == s.tokens.length) {
			s.tokens = Arrays.copyOf(s.tokens, s.tokens.length * 2);
		}
		s.tokens[s.length++] = token;
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
