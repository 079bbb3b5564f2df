package dev.blockserve.model;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.NativeBuffer;

/**
 * The backend buffers of one forward pass: activations for up to {@code tokenCap} tokens, step inputs
 * and logits for up to {@code seqCap} sequences. Sized for the largest step seen and reused, so a step
 * allocates nothing once it has grown. Owned by the engine thread, with its model.
 */
final class Workspace implements AutoCloseable {

	private final Backend backend;

	private final ModelConfig config;

	int tokenCap;

	int seqCap;

	int tableCap;

	NativeBuffer x, h, q, k, v, attn, o, gate, up, last, logits;

	NativeBuffer ids, pos, slots, qStart, seqLens, tables, lastRows, argmaxOut;

	/** Rows of the logits gathered for one download; allocated on first use (greedy serving never needs it). */
	NativeBuffer gathered, gatherIds;

	/** Logits of up to {@link #PROMPT_ROWS} hidden rows (prompt logprobs); allocated on first use. */
	NativeBuffer promptRows, promptHidden, promptLogits;

	/** Rows per prompt-logits pass: bounds the buffer (a row is a whole vocabulary of floats). */
	static final int PROMPT_ROWS = 64;

	int[] lastRowIdx = new int[8];

	Workspace(Backend backend, ModelConfig config) {
		this.backend = backend;
		this.config = config;
	}

	/** Grows the buffers, if needed, to hold a step of this many tokens, sequences and block-table entries. */
	void ensure(int tokens, int seqs, int tableEntries) {
		if (tokens <= tokenCap && seqs <= seqCap && tableEntries <= tableCap) {
			return;
		}
		close();
		tokenCap = Math.max(tokens, Math.max(16, tokenCap));
		seqCap = Math.max(seqs, Math.max(8, seqCap));
		tableCap = Math.max(tableEntries, Math.max(64, tableCap));
		int hid = config.hiddenSize();
		long T = tokenCap;
		x = backend.allocate(T * hid, DType.F32);
		h = backend.allocate(T * hid, DType.F32);
		q = backend.allocate(T * config.qDim(), DType.F32);
		k = backend.allocate(T * config.kvDim(), DType.F32);
		v = backend.allocate(T * config.kvDim(), DType.F32);
		attn = backend.allocate(T * config.qDim(), DType.F32);
		o = backend.allocate(T * hid, DType.F32);
		gate = backend.allocate(T * config.intermediateSize(), DType.F32);
		up = backend.allocate(T * config.intermediateSize(), DType.F32);
		last = backend.allocate((long) seqCap * hid, DType.F32);
		logits = backend.allocate((long) seqCap * config.vocabSize(), DType.F32);
		ids = backend.allocate(T, DType.I32);
		pos = backend.allocate(T, DType.I32);
		slots = backend.allocate(T, DType.I32);
		qStart = backend.allocate(seqCap + 1L, DType.I32);
		seqLens = backend.allocate(seqCap, DType.I32);
		tables = backend.allocate(tableCap, DType.I32);
		lastRows = backend.allocate(seqCap, DType.I32);
		argmaxOut = backend.allocate(seqCap, DType.I32);
		if (lastRowIdx.length < seqCap) {
			lastRowIdx = new int[seqCap];
		}
	}

	void ensureGather() {
		if (gathered == null) {
			gathered = backend.allocate((long) seqCap * config.vocabSize(), DType.F32);
			gatherIds = backend.allocate(seqCap, DType.I32);
		}
	}

	void ensurePromptLogits() {
		if (promptLogits == null) {
			promptRows = backend.allocate(PROMPT_ROWS, DType.I32);
			promptHidden = backend.allocate((long) PROMPT_ROWS * config.hiddenSize(), DType.F32);
			promptLogits = backend.allocate((long) PROMPT_ROWS * config.vocabSize(), DType.F32);
		}
	}

	@Override
	public void close() {
		for (NativeBuffer b : new NativeBuffer[] { x, h, q, k, v, attn, o, gate, up, last, logits, ids, pos, slots,
				qStart, seqLens, tables, lastRows, argmaxOut, gathered, gatherIds, promptRows, promptHidden,
				promptLogits }) {
			if (b != null) {
				b.close();
			}
		}
		gathered = null;
		gatherIds = null;
		promptRows = null;
		promptHidden = null;
		promptLogits = null;
	}
}
