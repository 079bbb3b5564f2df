package dev.blockserve.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dev.blockserve.backend.Backend;
import dev.blockserve.backend.DType;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.backend.NativeBuffer;
import dev.blockserve.backend.WeightType;
import dev.blockserve.weights.SafetensorsFile;
import dev.blockserve.weights.ModelFiles;

/**
 * A Llama-family decoder (GQA, RMSNorm, rotate-half RoPE, SwiGLU) whose attention reads K/V through
 * block tables. Qwen2, Qwen3 and Mistral are the same graph with optional parts switched on by their
 * {@link ModelConfig.Features}: projection biases, per-head q/k norms, a per-layer sliding window. {@link #forward} is the whole graph, top to bottom, as calls into the {@link Backend};
 * it runs unchanged on any backend. Activations live in a workspace sized for the largest step seen
 * and reused, so a step allocates nothing once the workspace has grown. Owned by the engine thread (one
 * step at a time); the weights are read-only.
 */
public final class LlamaModel implements AutoCloseable {

	private static final class Layer {

		NativeBuffer attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown;

		/** Optional parts of the family: null when absent. */
		NativeBuffer bq, bk, bv, bo, bGate, bUp, bDown, qNorm, kNorm;

		/** Sliding window in keys, 0 for full causal attention. */
		int window;
	}

	private final ModelConfig config;

	private final Backend backend;

	private final ModelFiles files;

	private final List<NativeBuffer> weights = new ArrayList<>();

	private final Layer[] layers;

	private final NativeBuffer embed;

	private final NativeBuffer finalNorm;

	private final NativeBuffer lmHead;

	private final NativeBuffer ropeTable;

	private int maxPositions;

	private final float attnScale;

	/** Activations and step inputs, grown to the largest step and reused. */
	private final Workspace w;

	/** How weight matrices are held (blockserve.dtype). */
	private final WeightType weightType;

	private LlamaModel(ModelConfig config, Backend backend, ModelFiles files, int maxPositions, WeightType weightType) {
		this.config = config;
		this.weightType = weightType;
		this.backend = backend;
		this.files = files;
		this.maxPositions = maxPositions;
		this.w = new Workspace(backend, config);
		this.attnScale = (float) (1.0 / Math.sqrt(config.headDim()));
		int hid = config.hiddenSize();
		embed = matrix("model.embed_tokens.weight", config.vocabSize(), hid);
		layers = new Layer[config.numLayers()];
		for (int l = 0; l < layers.length; l++) {
			String p = "model.layers." + l + ".";
			Layer L = new Layer();
			L.attnNorm = weight(p + "input_layernorm.weight", hid);
			L.wq = projection(p + "self_attn.q_proj.weight", config.qDim(), hid);
			L.wk = projection(p + "self_attn.k_proj.weight", config.kvDim(), hid);
			L.wv = projection(p + "self_attn.v_proj.weight", config.kvDim(), hid);
			L.wo = projection(p + "self_attn.o_proj.weight", hid, config.qDim());
			L.ffnNorm = weight(p + "post_attention_layernorm.weight", hid);
			L.wGate = projection(p + "mlp.gate_proj.weight", config.intermediateSize(), hid);
			L.wUp = projection(p + "mlp.up_proj.weight", config.intermediateSize(), hid);
			L.wDown = projection(p + "mlp.down_proj.weight", hid, config.intermediateSize());
			ModelConfig.Features f = config.features();
			if (f.qkvBias()) {
				L.bq = weight(p + "self_attn.q_proj.bias", config.qDim());
				L.bk = weight(p + "self_attn.k_proj.bias", config.kvDim());
				L.bv = weight(p + "self_attn.v_proj.bias", config.kvDim());
			}
			if (f.oBias()) {
				L.bo = weight(p + "self_attn.o_proj.bias", hid);
			}
			if (f.mlpBias()) {
				L.bGate = weight(p + "mlp.gate_proj.bias", config.intermediateSize());
				L.bUp = weight(p + "mlp.up_proj.bias", config.intermediateSize());
				L.bDown = weight(p + "mlp.down_proj.bias", hid);
			}
			if (f.qkNorm()) {
				L.qNorm = weight(p + "self_attn.q_norm.weight", config.headDim());
				L.kNorm = weight(p + "self_attn.k_norm.weight", config.headDim());
			}
			L.window = f.layerWindow()[l];
			layers[l] = L;
		}
		finalNorm = weight("model.norm.weight", hid);
		lmHead = config.tieWordEmbeddings() ? embed : matrix("lm_head.weight", config.vocabSize(), hid);
		backend.packForDecode(lmHead, config.vocabSize(), hid);
		float[] table = RopeTable.build(config, maxPositions);
		ropeTable = track(backend.allocate(table.length, DType.F32));
		backend.upload(ropeTable, table, table.length);
	}

	/**
	 * Loads the model in {@code dir} (config.json and safetensors) onto {@code backend}.
	 * @param maxContext the longest sequence to serve; 0 for the model's max_position_embeddings
	 */
	public static LlamaModel load(Path dir, Backend backend, int maxContext) {
		return load(dir, backend, maxContext, WeightType.AUTO);
	}

	/**
	 * Loads the model in {@code dir} onto {@code backend}, its weight matrices held as {@code weightType} says.
	 * @param maxContext the longest sequence to serve; 0 for the model's max_position_embeddings
	 */
	public static LlamaModel load(Path dir, Backend backend, int maxContext, WeightType weightType) {
		ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
		int maxPos = maxContext > 0 ? maxContext : config.maxPositionEmbeddings();
		ModelFiles files = new ModelFiles(dir, backend.weightPages());
		try {
			return new LlamaModel(config, backend, files, maxPos, weightType);
		}
		catch (RuntimeException e) {
			files.close();
			throw e;
		}
	}

	/** A vector (norm weight, bias): always F32. */
	private NativeBuffer weight(String name, long... shape) {
		SafetensorsFile f = files.fileOf(name);
		SafetensorsFile.Tensor t = tensor(f, name, shape);
		return track(backend.loadWeight(f.address(t), t.dtype(), t.elements()));
	}

	/** A matrix (projection, embedding table): held as {@link #weightType} says where the backend can. */
	private NativeBuffer matrix(String name, long... shape) {
		SafetensorsFile f = files.fileOf(name);
		SafetensorsFile.Tensor t = tensor(f, name, shape);
		return track(backend.loadMatrix(f.address(t), t.dtype(), t.elements(), weightType));
	}

	/** A matrix x multiplies (all but the embedding table), with the backend's decode form where it has one. */
	private NativeBuffer projection(String name, int rows, int cols) {
		NativeBuffer b = matrix(name, rows, cols);
		backend.packForDecode(b, rows, cols);
		return b;
	}

	private static SafetensorsFile.Tensor tensor(SafetensorsFile f, String name, long... shape) {
		SafetensorsFile.Tensor t = f.tensors().get(name);
		if (!Arrays.equals(t.shape(), shape)) {
			throw new ModelLoadException(f.path() + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape())
					+ ", config.json implies " + Arrays.toString(shape));
		}
		return t;
	}

	/** The type the weight matrices are held in (F32, BF16 or F16). */
	public DType matrixType() {
		return layers.length > 0 ? layers[0].wq.type() : embed.type();
	}

	/** How the weight files' bytes are held ({@link ModelFiles#placement()}). */
	public String weightPlacement() {
		return files.placement();
	}

	/** Bytes of the weights as held (views of the mapped file included). */
	public long weightBytes() {
		long sum = 0;
		for (NativeBuffer b : weights) {
			sum += b.bytes();
		}
		return sum;
	}

	/** Bytes of the second, packed form of the matrices for batch-1 decode (0 without one). */
	public long packedBytes() {
		long sum = 0;
		for (NativeBuffer b : weights) {
			sum += b.packedBytes();
		}
		return sum;
	}

	private NativeBuffer track(NativeBuffer b) {
		weights.add(b);
		return b;
	}

	public ModelConfig config() {
		return config;
	}

	public Backend backend() {
		return backend;
	}

	/** The longest sequence (prompt + output) this instance serves: the size of its RoPE table. */
	public int maxPositions() {
		return maxPositions;
	}

	/**
	 * Serves at most {@code n} positions, fewer than the RoPE table was built for (the KV cache holds no
	 * more). Called once at start-up, before any step.
	 */
	public void limitPositions(int n) {
		if (n < 1 || n > maxPositions) {
			throw new IllegalArgumentException("limitPositions(" + n + ") outside [1, " + maxPositions + "]");
		}
		maxPositions = n;
	}

	/** An F32 KV cache with this model's layer and head shapes. */
	public KvCacheMemory newKvCache(int numBlocks, int blockSize) {
		return newKvCache(numBlocks, blockSize, DType.F32);
	}

	/** A KV cache of {@code dtype} values (F32, BF16 or F16) with this model's layer and head shapes. */
	public KvCacheMemory newKvCache(int numBlocks, int blockSize, DType dtype) {
		return new KvCacheMemory(backend, config.numLayers(), numBlocks, blockSize, config.numKvHeads(),
				config.headDim(), dtype);
	}

	/**
	 * Runs one step: writes the new tokens' K/V into {@code cache} and returns the logits of the step's
	 * output rows ({@link StepInput#numOutputRows()}: each sequence's last token, or its last few),
	 * [outputRows, vocab], in a workspace buffer valid until the next call.
	 */
	public NativeBuffer forward(StepInput in, KvCacheMemory cache) {
		final int T = in.numTokens, S = in.numSeqs, R = in.numOutputRows, hid = config.hiddenSize();
		final int H = config.numHeads(), KVH = config.numKvHeads(), hd = config.headDim();
		final int inter = config.intermediateSize();
		if (T == 0) {
			throw new IllegalArgumentException("empty step");
		}
		if (cache.blockSize() != in.blockSize) {
			throw new IllegalArgumentException(
					"step built for block size " + in.blockSize + ", cache has " + cache.blockSize());
		}
		for (int s = 0; s < S; s++) {
			if (in.seqLens[s] > maxPositions) {
				throw new IllegalArgumentException(
						"sequence " + s + " reaches " + in.seqLens[s] + " tokens, over the maximum " + maxPositions);
			}
		}
		w.ensure(T, R, S * in.maxBlocksPerSeq); // R >= S: sized for the output rows
		backend.upload(w.ids, in.tokenIds, T);
		backend.upload(w.pos, in.positions, T);
		backend.upload(w.slots, in.slotMapping, T);
		backend.upload(w.qStart, in.queryStart, S + 1);
		backend.upload(w.seqLens, in.seqLens, S);
		backend.upload(w.tables, in.blockTables, S * in.maxBlocksPerSeq);

		backend.embedding(w.x, embed, w.ids, T, hid);
		for (int l = 0; l < layers.length; l++) {
			Layer L = layers[l];
			// attention block
			backend.rmsNorm(w.h, w.x, L.attnNorm, T, hid, config.rmsNormEps());
			backend.matmulSameInput(w.h, T, hid, w.q, L.wq, H * hd, w.k, L.wk, KVH * hd, w.v, L.wv, KVH * hd);
			if (L.bq != null) { // Qwen2 (and attention_bias)
				backend.biasAdd(w.q, L.bq, T, H * hd);
				backend.biasAdd(w.k, L.bk, T, KVH * hd);
				backend.biasAdd(w.v, L.bv, T, KVH * hd);
			}
			if (L.qNorm != null) { // Qwen3: RMSNorm of each head's query and key, in place, before RoPE
				backend.rmsNorm(w.q, w.q, L.qNorm, T * H, hd, config.rmsNormEps());
				backend.rmsNorm(w.k, w.k, L.kNorm, T * KVH, hd, config.rmsNormEps());
			}
			backend.rope(w.q, w.pos, ropeTable, T, H, hd);
			backend.rope(w.k, w.pos, ropeTable, T, KVH, hd);
			backend.kvWrite(cache, l, w.k, w.v, w.slots, T);
			backend.pagedAttention(w.attn, w.q, cache, l, w.tables, in.maxBlocksPerSeq, w.seqLens, w.qStart, S, T, H, attnScale,
					L.window);
			backend.matmul(w.o, w.attn, L.wo, T, H * hd, hid);
			if (L.bo != null) {
				backend.biasAdd(w.o, L.bo, T, hid);
			}
			backend.add(w.x, w.o, (long) T * hid);
			// feed-forward block
			backend.rmsNorm(w.h, w.x, L.ffnNorm, T, hid, config.rmsNormEps());
			backend.matmulSameInput(w.h, T, hid, w.gate, L.wGate, inter, w.up, L.wUp, inter, null, null, 0);
			if (L.bGate != null) { // Llama's mlp_bias
				backend.biasAdd(w.gate, L.bGate, T, inter);
				backend.biasAdd(w.up, L.bUp, T, inter);
			}
			backend.siluMul(w.gate, w.gate, w.up, (long) T * inter);
			backend.matmul(w.o, w.gate, L.wDown, T, inter, hid);
			if (L.bDown != null) {
				backend.biasAdd(w.o, L.bDown, T, hid);
			}
			backend.add(w.x, w.o, (long) T * hid);
		}
		// Only the output rows need logits: each sequence's last token, or its last few when it verifies drafts.
		for (int s = 0; s < S; s++) {
			int first = in.firstOutputRow(s), rows = in.lastOutputRow(s) - first + 1;
			for (int r = 0; r < rows; r++) {
				w.lastRowIdx[first + r] = in.lastTokenRow(s) - rows + 1 + r;
			}
		}
		backend.upload(w.lastRows, w.lastRowIdx, R);
		backend.embedding(w.last, w.x, w.lastRows, R, hid);
		backend.rmsNorm(w.last, w.last, finalNorm, R, hid, config.rmsNormEps());
		backend.matmul(w.logits, w.last, lmHead, R, hid, config.vocabSize());
		return w.logits;
	}

	/**
	 * The final hidden state (after the final norm, before the LM head) of the first {@code numRows} output
	 * rows of the last {@link #forward}, into {@code dst} one row of hidden_size after another: embeddings.
	 */
	public void finalHidden(int numRows, float[] dst) {
		backend.download(w.last, 0, dst, 0, numRows * config.hiddenSize());
	}

	/** Greedy tokens of the first {@code numRows} output rows of the last {@link #forward}, into {@code out}. */
	public void argmax(int numRows, int[] out) {
		backend.argmax(w.argmaxOut, w.logits, numRows, config.vocabSize());
		backend.download(w.argmaxOut, out, numRows);
	}

	/** How many rows one {@link #tokenLogits} call computes at most. */
	public static int tokenLogitsRows() {
		return Workspace.PROMPT_ROWS;
	}

	/**
	 * The logits of any tokens of the last {@link #forward} (not only each sequence's last): the final norm
	 * and the LM head over the step rows {@code rows[0..count)}, {@code count <= }{@link #tokenLogitsRows()},
	 * into {@code dst} one row after another. For prompt logprobs; the step's own logits are untouched.
	 */
	public void tokenLogits(int[] rows, int count, float[] dst) {
		if (count < 1 || count > Workspace.PROMPT_ROWS) {
			throw new IllegalArgumentException("rows: between 1 and " + Workspace.PROMPT_ROWS + ", got " + count);
		}
		int hid = config.hiddenSize(), vocab = config.vocabSize();
		w.ensurePromptLogits();
		backend.upload(w.promptRows, rows, count);
		backend.embedding(w.promptHidden, w.x, w.promptRows, count, hid);
		backend.rmsNorm(w.promptHidden, w.promptHidden, finalNorm, count, hid, config.rmsNormEps());
		backend.matmul(w.promptLogits, w.promptHidden, lmHead, count, hid, vocab);
		backend.download(w.promptLogits, 0, dst, 0, count * vocab);
	}

	/**
	 * Copies the logits rows {@code rows[0..count)} of the last {@link #forward} into {@code dst}, one after
	 * another, in one download: directly when they are the leading rows, else gathered on the device first.
	 */
	public void logitsRows(int[] rows, int count, float[] dst) {
		int vocab = config.vocabSize();
		boolean leading = true;
		for (int i = 0; i < count && leading; i++) {
			leading = rows[i] == i;
		}
		if (leading) {
			backend.download(w.logits, 0, dst, 0, count * vocab);
			return;
		}
		w.ensureGather();
		backend.upload(w.gatherIds, rows, count);
		backend.embedding(w.gathered, w.logits, w.gatherIds, count, vocab);
		backend.download(w.gathered, 0, dst, 0, count * vocab);
	}

	@Override
	public void close() {
		w.close();
		for (NativeBuffer b : weights) {
			b.close();
		}
		weights.clear();
		files.close();
	}
}
