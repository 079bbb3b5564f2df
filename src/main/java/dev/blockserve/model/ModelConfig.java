package dev.blockserve.model;

import java.nio.file.Path;

import tools.jackson.databind.JsonNode;

/**
 * The parts of a Hugging Face {@code config.json} a decoder of the Llama family needs: Llama, Qwen2,
 * Qwen3 and Mistral, whose differences are data here ({@link Features}) and nowhere else. {@link #read}
 * rejects what the engine does not implement with a message naming the architecture or field, rather
 * than producing wrong numbers later.
 * Immutable.
 */
public record ModelConfig(String architecture, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
		int numKvHeads, int headDim, int vocabSize, int maxPositionEmbeddings, float rmsNormEps, double ropeTheta,
		RopeScaling ropeScaling, boolean tieWordEmbeddings, int[] eosTokenIds, Features features) {

	/** The architectures served, by their Hugging Face class name and model_type. */
	public enum Family {
		LLAMA("LlamaForCausalLM", "llama"), QWEN2("Qwen2ForCausalLM", "qwen2"), QWEN3("Qwen3ForCausalLM", "qwen3"),
		MISTRAL("MistralForCausalLM", "mistral");

		final String className;

		final String modelType;

		Family(String className, String modelType) {
			this.className = className;
			this.modelType = modelType;
		}

		static Family of(String arch, String type) {
			for (Family f : values()) {
				if (f.className.equals(arch) || (arch.isEmpty() && f.modelType.equals(type))) {
					return f;
				}
			}
			return null;
		}
	}

	/**
	 * How a family's layers differ from Llama's, as transformers builds them.
	 * @param qkvBias biases on the q, k and v projections (Qwen2 always; Llama and Qwen3 with attention_bias)
	 * @param oBias a bias on the output projection (Llama and Qwen3 with attention_bias; never Qwen2)
	 * @param mlpBias biases on gate, up and down (Llama's mlp_bias)
	 * @param qkNorm per-head RMSNorm of queries and keys before RoPE (Qwen3)
	 * @param layerWindow per layer, the sliding window in keys, 0 for full causal attention
	 */
	public record Features(Family family, boolean qkvBias, boolean oBias, boolean mlpBias, boolean qkNorm,
			int[] layerWindow) {

		/** The largest window of any layer, 0 when every layer attends to the whole context. */
		public int maxWindow() {
			int m = 0;
			for (int w : layerWindow) {
				m = w == 0 ? Integer.MAX_VALUE : Math.max(m, w);
			}
			return m == Integer.MAX_VALUE ? 0 : m;
		}
	}

	/** rope_scaling: null for plain RoPE, else "linear" or "llama3" with their parameters. */
	public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
			int originalMaxPositionEmbeddings) {
	}

	public static ModelConfig read(Path file) {
		if (!java.nio.file.Files.exists(file)) {
			throw new ModelLoadException(file.getParent() + " has no config.json: it is not a model folder in Hugging Face "
					+ "layout (config.json, *.safetensors, tokenizer.json)");
		}
		JsonNode c = Json.read(file);
		String where = file.toString();
		String arch = c.path("architectures").path(0).asString("");
		String type = c.path("model_type").asString("");
		Family family = Family.of(arch, type);
		if (family == null) {
			throw new ModelLoadException(where + ": architecture '" + (arch.isEmpty() ? type : arch) + "' is not supported "
					+ "(blockserve serves LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and MistralForCausalLM)");
		}
		String act = c.path("hidden_act").asString("silu");
		if (!act.equals("silu")) {
			throw new ModelLoadException(where + ": hidden_act '" + act + "' is not supported (only silu)");
		}
		int hidden = positive(c, "hidden_size", where);
		int heads = positive(c, "num_attention_heads", where);
		int kvHeads = c.has("num_key_value_heads") && !c.get("num_key_value_heads").isNull()
				? positive(c, "num_key_value_heads", where) : heads;
		if (heads % kvHeads != 0) {
			throw new ModelLoadException(
					where + ": num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
		}
		int headDim = c.has("head_dim") && !c.get("head_dim").isNull() ? positive(c, "head_dim", where)
				: hidden / heads;
		if (headDim % 2 != 0) {
			throw new ModelLoadException(where + ": head_dim " + headDim + " must be even for rotary embeddings");
		}
		int layers = positive(c, "num_hidden_layers", where);
		return new ModelConfig(family.className, hidden,
				positive(c, "intermediate_size", where), layers, heads, kvHeads,
				headDim, positive(c, "vocab_size", where), c.path("max_position_embeddings").asInt(2048),
				(float) c.path("rms_norm_eps").asDouble(1e-6), c.path("rope_theta").asDouble(10000.0),
				ropeScaling(c.get("rope_scaling"), where), c.path("tie_word_embeddings").asBoolean(false),
				Json.ints(c.get("eos_token_id")), features(c, family, layers, where));
	}

	private static Features features(JsonNode c, Family family, int layers, String where) {
		boolean attnBias = c.path("attention_bias").asBoolean(false);
		boolean mlpBias = c.path("mlp_bias").asBoolean(false);
		if (mlpBias && family != Family.LLAMA) {
			throw new ModelLoadException(where + ": mlp_bias is not supported for " + family.className);
		}
		if (attnBias && (family == Family.MISTRAL || family == Family.QWEN2)) {
			throw new ModelLoadException(where + ": attention_bias is not supported for " + family.className);
		}
		return new Features(family, family == Family.QWEN2 || attnBias, attnBias, mlpBias, family == Family.QWEN3,
				windows(c, family, layers, where));
	}

	/**
	 * Each layer's sliding window, as transformers decides it: Mistral windows every layer when
	 * sliding_window is set; Qwen2 and Qwen3 only with use_sliding_window, on the layers that layer_types
	 * marks "sliding_attention", or else from max_window_layers on. Llama has none.
	 */
	private static int[] windows(JsonNode c, Family family, int layers, String where) {
		int[] w = new int[layers];
		JsonNode sw = c.get("sliding_window");
		int window = sw == null || sw.isNull() ? 0 : sw.asInt(0);
		if (family == Family.LLAMA || window <= 0) {
			return w;
		}
		if (family == Family.MISTRAL) {
			java.util.Arrays.fill(w, window);
			return w;
		}
		if (!c.path("use_sliding_window").asBoolean(false)) {
			return w;
		}
		JsonNode types = c.get("layer_types");
		int from = c.path("max_window_layers").asInt(layers);
		for (int l = 0; l < layers; l++) {
			String t = types != null && types.isArray() && l < types.size() ? types.get(l).asString("")
					: l >= from ? "sliding_attention" : "full_attention";
			switch (t) {
				case "sliding_attention" -> w[l] = window;
				case "full_attention" -> w[l] = 0;
				default -> throw new ModelLoadException(where + ": layer_types entry '" + t + "' is not supported");
			}
		}
		return w;
	}

	private static int positive(JsonNode c, String field, String where) {
		JsonNode n = c.get(field);
		if (n == null || !n.isNumber() || n.asInt() <= 0) {
			throw new ModelLoadException(where + ": field '" + field + "' is missing or not a positive integer");
		}
		return n.asInt();
	}

	private static RopeScaling ropeScaling(JsonNode n, String where) {
		if (n == null || n.isNull()) {
			return null;
		}
		String type = n.has("rope_type") ? n.path("rope_type").asString() : n.path("type").asString("");
		switch (type) {
			case "default":
				return null;
			case "linear":
				return new RopeScaling(type, n.path("factor").asDouble(1.0), 0, 0, 0);
			case "llama3":
				return new RopeScaling(type, n.path("factor").asDouble(8.0), n.path("low_freq_factor").asDouble(1.0),
						n.path("high_freq_factor").asDouble(4.0),
						n.path("original_max_position_embeddings").asInt(8192));
			default:
				throw new ModelLoadException(where + ": rope_scaling type '" + type
						+ "' is not supported (supported: default, linear, llama3)");
		}
	}

	public int qDim() {
		return numHeads * headDim;
	}

	public int kvDim() {
		return numKvHeads * headDim;
	}
}
