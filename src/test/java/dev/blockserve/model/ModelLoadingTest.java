package dev.blockserve.model;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.backend.KvCacheMemory;
import dev.blockserve.engine.OfflineGenerator;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.support.TestModelWriter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Loading models written by the test itself: dtypes, shards, untied heads, and every bad input. */
class ModelLoadingTest {

	static CpuBackend backend;

	@TempDir
	Path tmp;

	@BeforeAll
	static void open() {
		backend = new CpuBackend(0);
	}

	@AfterAll
	static void close() {
		assertThat(backend.liveBytes()).as("native bytes leaked").isZero();
	}

	static List<OfflineGenerator.Result> run(Path dir, int[] prompt, int n) {
		try (LlamaModel m = LlamaModel.load(dir, backend, 0); KvCacheMemory cache = m.newKvCache(64, 8)) {
			try (OfflineGenerator gen = new OfflineGenerator(m, cache, new KvCacheManager(new BlockPool(64, 8, 5), false,
					"test"), OfflineGenerator.batchConfig(64), null, GenerationConfig.read(dir, m.config()))) {
				return gen.generate(List.of(prompt), SamplingParams.greedy(n).toBuilder().ignoreEos(true).build());
			}
		}
	}

	@Test
	void bf16AndF16WeightsGiveTheSameOutputAsF32() throws IOException {
		int[] prompt = { 3, 17, 99, 5, 64 };
		TestModelWriter w = new TestModelWriter();
		var f32 = run(w.write(tmp.resolve("f32")), prompt, 8).get(0);
		w.dtype = "BF16";
		var bf16 = run(w.write(tmp.resolve("bf16")), prompt, 8).get(0);
		w.dtype = "F16";
		var f16 = run(w.write(tmp.resolve("f16")), prompt, 8).get(0);
		assertThat(bf16.tokens()).containsExactly(f32.tokens());
		assertThat(f16.tokens()).containsExactly(f32.tokens());
		assertThat(bf16.firstLogits()).containsExactly(f32.firstLogits());
		assertThat(f16.firstLogits()).containsExactly(f32.firstLogits());
	}

	@Test
	void shardedModelEqualsSingleFile() throws IOException {
		int[] prompt = { 1, 2, 3 };
		TestModelWriter w = new TestModelWriter();
		w.tied = false;
		var single = run(w.write(tmp.resolve("one")), prompt, 6).get(0);
		w.shards = 3;
		Path sharded = w.write(tmp.resolve("three"));
		assertThat(Files.exists(sharded.resolve("model.safetensors.index.json"))).isTrue();
		var three = run(sharded, prompt, 6).get(0);
		assertThat(three.firstLogits()).containsExactly(single.firstLogits());
		assertThat(three.tokens()).containsExactly(single.tokens());
	}

	@Test
	void llama3RopeScalingLoadsAndChangesLongRangeOutput() throws IOException {
		TestModelWriter w = new TestModelWriter();
		w.maxPositions = 256;
		int[] prompt = new int[200];
		for (int i = 0; i < prompt.length; i++) {
			prompt[i] = (i * 7) % 128;
		}
		var plain = run(w.write(tmp.resolve("plain")), prompt, 2).get(0);
		w.configOverrides.put("rope_scaling",
				"{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":16}");
		var scaled = run(w.write(tmp.resolve("scaled")), prompt, 2).get(0);
		assertThat(scaled.firstLogits()).isNotEqualTo(plain.firstLogits());
	}

	private Path model(String name, java.util.function.Consumer<TestModelWriter> change) throws IOException {
		TestModelWriter w = new TestModelWriter();
		change.accept(w);
		return w.write(tmp.resolve(name));
	}

	private static void assertLoadFails(Path dir, String... fragments) {
		assertThatThrownBy(() -> LlamaModel.load(dir, backend, 0).close()).isInstanceOf(ModelLoadException.class)
			.satisfies(e -> {
				for (String f : fragments) {
					assertThat(e.getMessage()).contains(f);
				}
			});
	}

	@Test
	void unsupportedArchitecture() throws IOException {
		Path d = model("arch", w -> {
			w.configOverrides.put("architectures", "[\"GPT2LMHeadModel\"]");
			w.configOverrides.put("model_type", "\"gpt2\"");
		});
		assertLoadFails(d, "config.json", "GPT2LMHeadModel", "not supported");
	}

	@Test
	void unsupportedRopeScaling() throws IOException {
		Path d = model("rope", w -> w.configOverrides.put("rope_scaling", "{\"type\":\"yarn\",\"factor\":4.0}"));
		assertLoadFails(d, "config.json", "rope_scaling type 'yarn'");
	}

	@Test
	void llamaAttentionBiasNeedsItsBiasTensors() throws IOException {
		// attention_bias is served now (q, k, v and o biases); a checkpoint that lacks them is named
		assertLoadFails(model("bias", w -> w.configOverrides.put("attention_bias", "true")),
				"tensor 'model.layers.0.self_attn.q_proj.bias' is missing");
	}

	@Test
	void unsupportedFamilyIsNamedWithTheSupportedOnes() throws IOException {
		Path d = model("gemma", w -> {
			w.configOverrides.put("architectures", "[\"GemmaForCausalLM\"]");
			w.configOverrides.put("model_type", "\"gemma\"");
		});
		assertLoadFails(d, "GemmaForCausalLM", "not supported", "Qwen2ForCausalLM", "MistralForCausalLM");
	}

	@Test
	void unsupportedFlagsOfAFamilyAreNamed() throws IOException {
		assertLoadFails(model("qwen2mlp", w -> {
			w.configOverrides.put("architectures", "[\"Qwen2ForCausalLM\"]");
			w.configOverrides.put("mlp_bias", "true");
		}), "mlp_bias is not supported for Qwen2ForCausalLM");
		assertLoadFails(model("mistralbias", w -> {
			w.configOverrides.put("architectures", "[\"MistralForCausalLM\"]");
			w.configOverrides.put("attention_bias", "true");
		}), "attention_bias is not supported for MistralForCausalLM");
		assertLoadFails(model("layertypes", w -> {
			w.configOverrides.put("architectures", "[\"Qwen2ForCausalLM\"]");
			w.configOverrides.put("sliding_window", "8");
			w.configOverrides.put("use_sliding_window", "true");
			w.configOverrides.put("layer_types", "[\"chunked_attention\", \"full_attention\"]");
		}), "layer_types entry 'chunked_attention' is not supported");
	}

	@Test
	void familyTensorsAreRequired() throws IOException {
		assertLoadFails(model("qwen2", w -> w.configOverrides.put("architectures", "[\"Qwen2ForCausalLM\"]")),
				"tensor 'model.layers.0.self_attn.q_proj.bias' is missing");
		assertLoadFails(model("qwen3", w -> w.configOverrides.put("architectures", "[\"Qwen3ForCausalLM\"]")),
				"tensor 'model.layers.0.self_attn.q_norm.weight' is missing");
	}

	@Test
	void slidingWindowsPerLayerFollowTransformers() throws IOException {
		ModelConfig mistral = ModelConfig.read(model("mistralw", w -> {
			w.configOverrides.put("architectures", "[\"MistralForCausalLM\"]");
			w.configOverrides.put("sliding_window", "8");
		}).resolve("config.json"));
		assertThat(mistral.features().layerWindow()).containsExactly(8, 8);
		// Qwen2.5's configs carry a window that use_sliding_window switches off
		ModelConfig qwenOff = ModelConfig.read(model("qwenoff", w -> {
			w.configOverrides.put("architectures", "[\"Qwen2ForCausalLM\"]");
			w.configOverrides.put("sliding_window", "32768");
			w.configOverrides.put("use_sliding_window", "false");
		}).resolve("config.json"));
		assertThat(qwenOff.features().layerWindow()).containsExactly(0, 0);
		ModelConfig qwenFrom1 = ModelConfig.read(model("qwenon", w -> {
			w.configOverrides.put("architectures", "[\"Qwen2ForCausalLM\"]");
			w.configOverrides.put("sliding_window", "16");
			w.configOverrides.put("use_sliding_window", "true");
			w.configOverrides.put("max_window_layers", "1");
		}).resolve("config.json"));
		assertThat(qwenFrom1.features().layerWindow()).containsExactly(0, 16);
	}

	@Test
	void headsNotMultipleOfKvHeads() throws IOException {
		assertLoadFails(model("gqa", w -> w.configOverrides.put("num_key_value_heads", "3")), "not a multiple");
	}

	@Test
	void missingConfigField() throws IOException {
		assertLoadFails(model("field", w -> w.configOverrides.put("hidden_size", "null")), "'hidden_size'");
	}

	@Test
	void missingTensor() throws IOException {
		Path d = model("missing", w -> w.layers = 2);
		Files.writeString(d.resolve("config.json"),
				Files.readString(d.resolve("config.json")).replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"));
		assertLoadFails(d, "tensor 'model.layers.2.input_layernorm.weight' is missing");
	}

	@Test
	void shapeMismatch() throws IOException {
		Path d = model("shape", w -> {
		});
		Files.writeString(d.resolve("config.json"), Files.readString(d.resolve("config.json"))
			.replace("\"intermediate_size\": 96", "\"intermediate_size\": 80"));
		assertLoadFails(d, "model.safetensors", "model.layers.0.mlp.gate_proj.weight", "[96, 64]", "[80, 64]");
	}

	@Test
	void truncatedFile() throws IOException {
		Path d = model("trunc", w -> {
		});
		Path f = d.resolve("model.safetensors");
		try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
			raf.setLength(raf.length() - 100);
		}
		assertLoadFails(d, "model.safetensors", "model.norm.weight", "truncated");
	}

	@Test
	void unsupportedDtypeNamesTheTensor() throws IOException {
		Path d = model("dtype", w -> {
		});
		TestModelWriter.writeRaw(d.resolve("model.safetensors"),
				"{\"model.embed_tokens.weight\":{\"dtype\":\"I8\",\"shape\":[128,64],\"data_offsets\":[0,8192]}}", 8192);
		assertLoadFails(d, "model.embed_tokens.weight", "dtype 'I8'");
	}

	@Test
	void garbageHeader() throws IOException {
		Path d = model("garbage", w -> {
		});
		Files.write(d.resolve("model.safetensors"), "this is not a safetensors file at all".getBytes());
		assertLoadFails(d, "model.safetensors", "header");
	}

	@Test
	void headerThatIsNotJson() throws IOException {
		Path d = model("json", w -> {
		});
		TestModelWriter.writeRaw(d.resolve("model.safetensors"), "{not json", 16);
		assertLoadFails(d, "model.safetensors", "not valid JSON");
	}

	@Test
	void missingWeightsFile() throws IOException {
		Path d = model("nofile", w -> {
		});
		Files.delete(d.resolve("model.safetensors"));
		assertLoadFails(d, "no model.safetensors");
	}

	@Test
	void missingConfig() {
		assertLoadFails(tmp, "has no config.json", "not a model folder");
	}

	@Test
	void missingShard() throws IOException {
		Path d = model("shards", w -> w.shards = 2);
		Files.delete(d.resolve("model-00002-of-00002.safetensors"));
		assertLoadFails(d, "model-00002-of-00002.safetensors", "not found");
	}

	@Test
	void contextOverflowIsRejected() throws IOException {
		Path d = model("ctx", w -> w.maxPositions = 32);
		assertThatThrownBy(() -> run(d, new int[30], 8)).isInstanceOf(IllegalArgumentException.class)
			.hasMessageContaining("maximum context length is 32");
	}
}
