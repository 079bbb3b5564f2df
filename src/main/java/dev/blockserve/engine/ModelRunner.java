package dev.blockserve.engine;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.kvcache.BlockCopies;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.model.StepInput;
import dev.blockserve.scheduler.SchedulerOutput;

/**
 * Runs one scheduled step on the model: the copy-on-write block copies, the step's input, the forward
 * pass, the greedy token of every sequence, and one batched download of the logits rows that sampling
 * needs (only those: a greedy sequence needs no row), and on demand the logits of other rows of the step
 * (prompt logprobs). Buffers are reused from step to step, so a step allocates nothing once they have
 * grown. Owned by the engine thread.
 */
final class ModelRunner implements AutoCloseable {

	private final LlamaModel model;

	private final Backend backend;

	private final KvCacheMemory cache;

	private final int maxBlocksPerSeq;

	private final int vocab;

	private final StepInput step = new StepInput();

	/** The greedy token of every output row of the last step. */
	private int[] greedy = new int[64];

	/** Output rows whose logits were downloaded, in download order. */
	private int[] rows = new int[64];

	/** Per sequence of the step: its (first) row's position among the downloaded rows, or -1. */
	private int[] rowOf = new int[64];

	private float[] logits = new float[0];

	/** The step's final hidden rows, one per sequence, when an embedding request finished its prompt. */
	private float[] hidden = new float[0];

	private final int hiddenSize;

	private final int[] tokenRows = new int[LlamaModel.tokenLogitsRows()];

	/** Logits of prompt rows (prompt logprobs); allocated on first use. */
	private float[] tokenLogits;

	private NativeBuffer copySrc;

	private NativeBuffer copyDst;

	ModelRunner(LlamaModel model, KvCacheMemory cache) {
		this.model = model;
		this.backend = model.backend();
		this.cache = cache;
		this.maxBlocksPerSeq = KvCacheManager.blocksFor(model.maxPositions(), cache.blockSize());
		this.vocab = model.config().vocabSize();
		this.hiddenSize = model.config().hiddenSize();
	}

	/** Runs the step {@code out} plans; afterwards {@link #greedy}, {@link #rowOffset} and {@link #logits} hold its output. */
	void execute(SchedulerOutput<EngineSequence> out) {
		int n = out.count();
		// rowOf has an entry per sequence, rows one per downloaded row (several for a sequence with drafts):
		// they grow apart
		if (rowOf.length < n) {
			rowOf = new int[Math.max(n, rowOf.length * 2)];
		}
		copyBlocks(out.copies());
		step.reset(cache.blockSize(), maxBlocksPerSeq);
		int numRows = 0;
		boolean embeds = false;
		for (int i = 0; i < n; i++) {
			EngineSequence s = out.seq(i);
			int numNew = out.numNewTokens(i);
			embeds |= s.needsHiddenRowAfter(numNew);
			// a step that verifies d drafts needs the rows of the last real token and of each draft
			int seqRows = 1 + s.draftsIn(numNew);
			step.addSequence(s.tokens(), s.numComputed(), numNew, s.table(), seqRows);
			if (s.needsLogitsRowAfter(numNew)) {
				rowOf[i] = numRows;
				if (rows.length < numRows + seqRows) {
					rows = java.util.Arrays.copyOf(rows, Math.max(numRows + seqRows, rows.length * 2));
				}
				for (int j = 0; j < seqRows; j++) {
					rows[numRows++] = step.firstOutputRow(i) + j;
				}
			}
			else {
				rowOf[i] = -1;
			}
		}
		int outputRows = step.numOutputRows();
		if (greedy.length < outputRows) {
			greedy = new int[Math.max(outputRows, greedy.length * 2)];
		}
		model.forward(step, cache);
		model.argmax(outputRows, greedy);
		if (embeds) {
			if (hidden.length < outputRows * hiddenSize) {
				hidden = new float[Math.max(outputRows, 8) * hiddenSize];
			}
			model.finalHidden(outputRows, hidden);
		}
		if (numRows > 0) {
			if (logits.length < numRows * vocab) {
				logits = new float[Math.max(numRows, 8) * vocab];
			}
			model.logitsRows(rows, numRows, logits);
		}
	}

	/** The greedy token of sequence {@code i} of the last step (after its last token). */
	int greedy(int i) {
		return greedy[step.lastOutputRow(i)];
	}

	/**
	 * The greedy token after sequence {@code i}'s {@code j}-th output row of the last step: j = 0 follows its
	 * last real token, j = k its k-th draft.
	 */
	int greedy(int i, int j) {
		return greedy[step.firstOutputRow(i) + j];
	}

	/** Where sequence {@code i}'s logits row starts in {@link #logits()}, or -1 when it was not downloaded. */
	int rowOffset(int i) {
		return rowOffset(i, 0);
	}

	/** Where the logits row of sequence {@code i}'s {@code j}-th output row starts in {@link #logits()}, or -1. */
	int rowOffset(int i, int j) {
		return rowOf[i] < 0 ? -1 : (rowOf[i] + j) * vocab;
	}

	float[] logits() {
		return logits;
	}

	/** The final hidden rows of the last step; sequence {@code i}'s (when it finished an embedding's prompt) at {@link #hiddenOffset}. */
	float[] hidden() {
		return hidden;
	}

	int hiddenOffset(int i) {
		return step.lastOutputRow(i) * hiddenSize;
	}

	int hiddenSize() {
		return hiddenSize;
	}

	/**
	 * The logits of {@code count} consecutive new tokens of the last step's sequence {@code i}, from its
	 * {@code first}-th on, {@code count <= }{@link LlamaModel#tokenLogitsRows()}: rows of {@code vocab} floats.
	 */
	float[] tokenLogits(int i, int first, int count) {
		if (tokenLogits == null) {
			tokenLogits = new float[tokenRows.length * vocab];
		}
		int base = step.firstTokenRow(i) + first;
		for (int r = 0; r < count; r++) {
			tokenRows[r] = base + r;
		}
		model.tokenLogits(tokenRows, count, tokenLogits);
		return tokenLogits;
	}

	/** How many rows {@link #tokenLogits} gives at most. */
	int tokenLogitsRows() {
		return tokenRows.length;
	}

	private void copyBlocks(BlockCopies copies) {
		int n = copies.count();
		if (n == 0) {
			return;
		}
		if (copySrc == null || copySrc.elements() < n) {
			close();
			copySrc = backend.allocate(Math.max(n, 64), DType.I32);
			copyDst = backend.allocate(Math.max(n, 64), DType.I32);
		}
		backend.upload(copySrc, copies.src(), n);
		backend.upload(copyDst, copies.dst(), n);
		backend.blockCopy(cache, copySrc, copyDst, n);
	}

	@Override
	public void close() {
		if (copySrc != null) {
			copySrc.close();
			copyDst.close();
			copySrc = null;
			copyDst = null;
		}
	}
}
