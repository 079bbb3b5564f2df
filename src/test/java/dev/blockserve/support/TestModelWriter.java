package dev.blockserve.support;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Writes random-weight Llama models in Hugging Face layout (config.json + model.safetensors), so tests
 * and benchmarks need no downloaded model. Weights are small random values of a fixed seed; with
 * {@code dtype} BF16 or F16 the same values are stored rounded to that type.
 */
public final class TestModelWriter {

	public int hidden = 64, intermediate = 96, layers = 2, heads = 4, kvHeads = 2, headDim = 16, vocab = 128,
			maxPositions = 256;

	public boolean tied = true;

	public String dtype = "F32";

	public long seed = 42;

	/** Extra or replaced config.json fields, written verbatim as JSON values. */
	public final Map<String, String> configOverrides = new LinkedHashMap<>();

	public static TestModelWriter smolLm2Shape() {
		TestModelWriter w = new TestModelWriter();
		w.hidden = 576;
		w.intermediate = 1536;
		w.layers = 30;
		w.heads = 9;
		w.kvHeads = 3;
		w.headDim = 64;
		w.vocab = 49152;
		w.maxPositions = 2048;
		return w;
	}

	public Map<String, long[]> tensorShapes() {
		Map<String, long[]> t = new LinkedHashMap<>();
		t.put("model.embed_tokens.weight", new long[] { vocab, hidden });
		for (int l = 0; l < layers; l++) {
			String p = "model.layers." + l + ".";
			t.put(p + "input_layernorm.weight", new long[] { hidden });
			t.put(p + "self_attn.q_proj.weight", new long[] { (long) heads * headDim, hidden });
			t.put(p + "self_attn.k_proj.weight", new long[] { (long) kvHeads * headDim, hidden });
			t.put(p + "self_attn.v_proj.weight", new long[] { (long) kvHeads * headDim, hidden });
			t.put(p + "self_attn.o_proj.weight", new long[] { hidden, (long) heads * headDim });
			t.put(p + "post_attention_layernorm.weight", new long[] { hidden });
			t.put(p + "mlp.gate_proj.weight", new long[] { intermediate, hidden });
			t.put(p + "mlp.up_proj.weight", new long[] { intermediate, hidden });
			t.put(p + "mlp.down_proj.weight", new long[] { hidden, intermediate });
		}
		t.put("model.norm.weight", new long[] { hidden });
		if (!tied) {
			t.put("lm_head.weight", new long[] { vocab, hidden });
		}
		return t;
	}

	public String configJson() {
		Map<String, String> c = new LinkedHashMap<>();
		c.put("architectures", "[\"LlamaForCausalLM\"]");
		c.put("model_type", "\"llama\"");
		c.put("hidden_size", String.valueOf(hidden));
		c.put("intermediate_size", String.valueOf(intermediate));
		c.put("num_hidden_layers", String.valueOf(layers));
		c.put("num_attention_heads", String.valueOf(heads));
		c.put("num_key_value_heads", String.valueOf(kvHeads));
		c.put("head_dim", String.valueOf(headDim));
		c.put("hidden_act", "\"silu\"");
		c.put("max_position_embeddings", String.valueOf(maxPositions));
		c.put("rms_norm_eps", "1e-05");
		c.put("rope_theta", "10000.0");
		c.put("tie_word_embeddings", String.valueOf(tied));
		c.put("vocab_size", String.valueOf(vocab));
		c.put("eos_token_id", "2");
		c.putAll(configOverrides);
		StringBuilder sb = new StringBuilder("{");
		c.forEach((k, v) -> sb.append(sb.length() > 1 ? ",\n" : "\n").append("  \"").append(k).append("\": ").append(v));
		return sb.append("\n}\n").toString();
	}

	/** Number of safetensors files; above 1, a model.safetensors.index.json lists them. */
	public int shards = 1;

	public Path write(Path dir) throws IOException {
		Files.createDirectories(dir);
		Files.writeString(dir.resolve("config.json"), configJson());
		Map<String, long[]> shapes = tensorShapes();
		if (shards == 1) {
			writeFile(dir.resolve("model.safetensors"), shapes);
			return dir;
		}
		java.util.List<Map<String, long[]>> parts = new java.util.ArrayList<>();
		for (int i = 0; i < shards; i++) {
			parts.add(new LinkedHashMap<>());
		}
		int i = 0;
		StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
		for (Map.Entry<String, long[]> e : shapes.entrySet()) {
			int shard = i++ % shards;
			parts.get(shard).put(e.getKey(), e.getValue());
			index.append(i > 1 ? "," : "").append('"').append(e.getKey()).append("\":\"").append(shardName(shard))
				.append('"');
		}
		Files.writeString(dir.resolve("model.safetensors.index.json"), index.append("}}").toString());
		for (int k = 0; k < shards; k++) {
			writeFile(dir.resolve(shardName(k)), parts.get(k));
		}
		return dir;
	}

	private String shardName(int k) {
		return String.format("model-%05d-of-%05d.safetensors", k + 1, shards);
	}

	private void writeFile(Path file, Map<String, long[]> shapes) throws IOException {
		int esize = dtype.equals("F32") ? 4 : 2;
		StringBuilder header = new StringBuilder("{");
		long offset = 0;
		for (Map.Entry<String, long[]> e : shapes.entrySet()) {
			long n = 1;
			StringBuilder shape = new StringBuilder();
			for (long d : e.getValue()) {
				n *= d;
				shape.append(shape.length() > 0 ? "," : "").append(d);
			}
			header.append(header.length() > 1 ? "," : "").append('"').append(e.getKey()).append("\":{\"dtype\":\"")
				.append(dtype).append("\",\"shape\":[").append(shape).append("],\"data_offsets\":[").append(offset)
				.append(',').append(offset + n * esize).append("]}");
			offset += n * esize;
		}
		header.append('}');
		byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
		int pad = (8 - h.length % 8) % 8;
		try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
				StandardOpenOption.TRUNCATE_EXISTING)) {
			ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length + pad).flip();
			ch.write(len);
			ch.write(ByteBuffer.wrap(h));
			ch.write(ByteBuffer.wrap(" ".repeat(pad).getBytes(StandardCharsets.US_ASCII)));
			ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
			for (Map.Entry<String, long[]> e : shapes.entrySet()) {
				long n = 1;
				for (long d : e.getValue()) {
					n *= d;
				}
				boolean norm = e.getKey().endsWith("norm.weight");
				// Seeded per tensor: the same model written as one file or as shards holds the same weights.
				Random r = new Random(seed * 31 + e.getKey().hashCode());
				float scale = (float) (1 / Math.sqrt(e.getValue()[e.getValue().length - 1]));
				for (long i = 0; i < n; i++) {
					// Values on a grid of 1/256 (norms: 1 + k/64) are exact in F32, BF16 and F16 alike,
					// so models written in different dtypes hold identical weights.
					float v = norm ? 1 + (r.nextInt(13) - 6) / 64f
							: Math.round((r.nextFloat() * 2 - 1) * scale * 256) / 256f;
					if (buf.remaining() < 4) {
						ch.write(buf.flip());
						buf.clear();
					}
					switch (dtype) {
						case "F32" -> buf.putFloat(v);
						case "BF16" -> buf.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
						case "F16" -> buf.putShort(toHalfExact(v));
						default -> throw new IllegalArgumentException(dtype);
					}
				}
			}
			ch.write(buf.flip());
		}
	}

	/** A word-level tokenizer.json whose tokens are "t0".."t{vocab-1}" (for models with random weights). */
	public void writeWordLevelTokenizer(Path dir) throws IOException {
		StringBuilder v = new StringBuilder();
		for (int i = 0; i < vocab; i++) {
			v.append(i > 0 ? "," : "").append("\"t").append(i).append("\":").append(i);
		}
		Files.writeString(dir.resolve("tokenizer.json"), "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
				+ "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
				+ "\"post_processor\":null,\"decoder\":null,\"model\":{\"type\":\"WordLevel\",\"vocab\":{" + v
				+ "},\"unk_token\":\"t0\"}}");
	}

	/** F16 bits of a value that F16 holds exactly (normal range, at most 11 significant bits). */
	static short toHalfExact(float v) {
		if (v == 0) {
			return 0;
		}
		int bits = Float.floatToRawIntBits(v);
		int sign = (bits >>> 16) & 0x8000;
		int exp = ((bits >>> 23) & 0xff) - 127 + 15;
		int man = (bits >>> 13) & 0x3ff;
		if (exp <= 0 || exp >= 31 || (bits & 0x1fff) != 0) {
			throw new IllegalArgumentException(v + " is not exact in F16");
		}
		return (short) (sign | exp << 10 | man);
	}

	/** Writes an arbitrary safetensors file with the given raw header JSON and data size. */
	public static void writeRaw(Path file, String headerJson, long dataBytes) throws IOException {
		byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
		try (OutputStream out = Files.newOutputStream(file)) {
			out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
			out.write(h);
			out.write(new byte[(int) dataBytes]);
		}
	}
}
