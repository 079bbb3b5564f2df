package dev.blockserve.model;

import java.nio.file.Path;

import tools.jackson.databind.JsonNode;

/**
 * The parts of a Hugging Face {@code config.json} a Llama-family model needs. {@link #read} rejects
 * what the engine does not implement with a message naming the field, rather than producing wrong
 * numbers later.
 * Immutable.
 */
public record ModelConfig(String architecture, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
		int numKvHeads, int headDim, int vocabSize, int maxPositionEmbeddings, float rmsNormEps, double ropeTheta,
		RopeScaling ropeScaling, boolean tieWordEmbeddings, int[] eosTokenIds) {

	/** rope_scaling: null for plain RoPE, else "linear" or "llama3" with their parameters. */
	public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
			int originalMaxPositionEmbeddings) {
	}

	public static ModelConfig read(Path file) {
		JsonNode c = Json.read(file);
		String where = file.toString();
		String arch = c.path("architectures").path(0).asString("");
		String type = c.path("model_type").asString("");
		if (!arch.equals("LlamaForCausalLM") && !type.equals("llama")) {
			throw new ModelLoadException(where + ": architecture '" + (arch.isEmpty() ? type : arch)
					+ "' is not supported (blockserve serves LlamaForCausalLM models)");
		}
		String act = c.path("hidden_act").asString("silu");
		if (!act.equals("silu")) {
			throw new ModelLoadException(where + ": hidden_act '" + act + "' is not supported (only silu)");
		}
		if (c.path("attention_bias").asBoolean(false) || c.path("mlp_bias").asBoolean(false)) {
			throw new ModelLoadException(where + ": attention_bias / mlp_bias are not supported");
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
		return new ModelConfig(arch.isEmpty() ? "LlamaForCausalLM" : arch, hidden,
				positive(c, "intermediate_size", where), positive(c, "num_hidden_layers", where), heads, kvHeads,
				headDim, positive(c, "vocab_size", where), c.path("max_position_embeddings").asInt(2048),
				(float) c.path("rms_norm_eps").asDouble(1e-6), c.path("rope_theta").asDouble(10000.0),
				ropeScaling(c.get("rope_scaling"), where), c.path("tie_word_embeddings").asBoolean(false),
				Json.ints(c.get("eos_token_id")));
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
