package dev.blockserve.api;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import com.openai.models.embeddings.EmbeddingCreateParams;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.RawHttp;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;
import tools.jackson.databind.JsonNode;

import org.springframework.boot.test.context.SpringBootTest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * {@code POST /v1/embeddings} on the shared Qwen3 model (tied embeddings): each input's vector is the final
 * hidden state of its last token, normalised. The golden first-step logits are that hidden state times the
 * embedding matrix, so the matrix times the vector must be the golden logits up to one positive factor
 * (the state's norm): an independent check of the pooled row, here with prompts computed in chunks of 5
 * tokens and, when repeated, from the prefix cache. Then the official SDK, Spring AI and
 * LangChain4j read the same vectors, in both encodings, and bad inputs are 400s naming their field.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-qwen3", "blockserve.kv-cache.num-blocks=256",
				"blockserve.kv-cache.block-size=16", "blockserve.scheduler.long-prefill-token-threshold=5" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EmbeddingsTest extends OpenAiServerTest {

	static final String MODEL = "tiny-random-qwen3";

	String baseUrl() {
		return "http://127.0.0.1:" + port + "/v1";
	}

	RawHttp.Response post(Object body) throws Exception {
		return RawHttp.request(port, "POST", "/v1/embeddings", null, Api.JSON.writeValueAsString(body));
	}

	List<float[]> embed(Object input) throws Exception {
		RawHttp.Response r = post(Map.of("model", MODEL, "input", input));
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		JsonNode root = Api.JSON.readTree(r.body());
		assertThat(root.path("object").asString()).isEqualTo("list");
		assertThat(root.path("model").asString()).isEqualTo(MODEL);
		List<float[]> out = new ArrayList<>();
		for (JsonNode d : root.path("data")) {
			assertThat(d.path("object").asString()).isEqualTo("embedding");
			assertThat(d.path("index").asInt()).isEqualTo(out.size());
			out.add(floats(d.path("embedding")));
		}
		return out;
	}

	static float[] floats(JsonNode a) {
		return SharedModels.floats(a);
	}

	/** model.embed_tokens.weight of the shared model's F32 safetensors, [vocab][hidden]. */
	static float[][] embeddingMatrix() throws Exception {
		Path file = SharedModels.dir(MODEL).resolve("model.safetensors");
		try (FileChannel ch = FileChannel.open(file)) {
			ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
			ch.read(len, 0);
			long headerLen = len.getLong(0);
			ByteBuffer header = ByteBuffer.allocate((int) headerLen);
			ch.read(header, 8);
			JsonNode t = Api.JSON.readTree(new String(header.array(), StandardCharsets.UTF_8)).path("model.embed_tokens.weight");
			assertThat(t.path("dtype").asString()).isEqualTo("F32");
			int rows = t.path("shape").get(0).asInt(), cols = t.path("shape").get(1).asInt();
			ByteBuffer data = ByteBuffer.allocate(rows * cols * 4).order(ByteOrder.LITTLE_ENDIAN);
			ch.read(data, 8 + headerLen + t.path("data_offsets").get(0).asLong());
			float[][] m = new float[rows][cols];
			data.flip();
			for (float[] row : m) {
				data.asFloatBuffer().get(row);
				data.position(data.position() + cols * 4);
			}
			return m;
		}
	}

	@Test
	void theVectorTimesTheEmbeddingMatrixIsTheGoldenLogitsUpToItsNorm() throws Exception {
		float[][] e = embeddingMatrix();
		List<SharedModels.GoldenCase> cases = SharedModels.golden(MODEL);
		List<int[]> prompts = cases.stream().map(SharedModels.GoldenCase::promptIds).toList();
		List<float[]> vectors = embed(prompts); // all cases in one request
		assertThat(vectors).hasSize(cases.size());
		for (int c = 0; c < cases.size(); c++) {
			float[] v = vectors.get(c);
			float[] golden = cases.get(c).firstStepLogits();
			double norm = 0;
			for (float x : v) {
				norm += x * x;
			}
			assertThat(Math.sqrt(norm)).as("unit length").isCloseTo(1.0, within(1e-5));
			double[] z = new double[e.length];
			double zz = 0, zg = 0, gMax = 0;
			for (int t = 0; t < e.length; t++) {
				for (int k = 0; k < v.length; k++) {
					z[t] += (double) e[t][k] * v[k];
				}
				zz += z[t] * z[t];
				zg += z[t] * golden[t];
				gMax = Math.max(gMax, Math.abs(golden[t]));
			}
			double scale = zg / zz; // the hidden state's norm
			assertThat(scale).as("case %d: the factor is the state's norm, positive", c).isPositive();
			for (int t = 0; t < e.length; t++) {
				assertThat(scale * z[t]).as("case %d, token %d", c, t).isCloseTo(golden[t], within(1e-4 * Math.max(1, gMax)));
			}
			// one input alone gives the same vector as within the batch
			if (c < 2) {
				float[] alone = embed(prompts.get(c)).get(0);
				assertThat(alone).containsExactly(v, within(1e-6f));
			}
		}
		EngineProbes.checkInvariants(engine);
	}

	@Test
	void theClientsReadTheSameVectorsInBothEncodings() throws Exception {
		String text = "The quick brown fox";
		float[] expected = embed(text).get(0);
		assertThat(expected).hasSize(64);

		var sdk = client.embeddings()
			.create(EmbeddingCreateParams.builder().model(MODEL).input(text)
				.encodingFormat(EmbeddingCreateParams.EncodingFormat.FLOAT).build());
		List<Float> sdkFloats = sdk.data().get(0).embedding();
		float[] fromSdk = new float[sdkFloats.size()];
		for (int i = 0; i < fromSdk.length; i++) {
			fromSdk[i] = sdkFloats.get(i);
		}
		assertThat(fromSdk).containsExactly(expected, within(0f));
		assertThat(sdk.usage().promptTokens()).isPositive().isEqualTo(sdk.usage().totalTokens());

		RawHttp.Response b64 = post(Map.of("model", MODEL, "input", text, "encoding_format", "base64"));
		assertThat(b64.status()).as(b64.body()).isEqualTo(200);
		ByteBuffer bytes = ByteBuffer
			.wrap(Base64.getDecoder().decode(Api.JSON.readTree(b64.body()).path("data").get(0).path("embedding").asString()))
			.order(ByteOrder.LITTLE_ENDIAN);
		float[] decoded = new float[bytes.remaining() / 4];
		bytes.asFloatBuffer().get(decoded);
		assertThat(decoded).containsExactly(expected, within(0f));

		var springAi = org.springframework.ai.openai.OpenAiEmbeddingModel.builder()
			.options(org.springframework.ai.openai.OpenAiEmbeddingOptions.builder().baseUrl(baseUrl()).apiKey("unused")
				.model(MODEL).build())
			.build();
		assertThat(springAi.embed(text)).containsExactly(expected, within(1e-7f));

		var lc4j = dev.langchain4j.model.openai.OpenAiEmbeddingModel.builder().baseUrl(baseUrl()).apiKey("unused")
			.modelName(MODEL).build();
		assertThat(lc4j.embed(text).content().vector()).containsExactly(expected, within(1e-7f));
	}

	/**
	 * A batch above the generation limits (256 prompts a request, 256 waiting requests): LangChain4j sends up to
	 * 2,048 segments in one request; they are embedded 64 at a time, in order. 2,049 is a 400.
	 */
	@Test
	void aBatchOf600InputsIsEmbeddedInOrderAnd2049AreRefused() throws Exception {
		List<String> texts = new ArrayList<>();
		for (int i = 0; i < 600; i++) {
			texts.add("segment number " + i);
		}
		var lc4j = dev.langchain4j.model.openai.OpenAiEmbeddingModel.builder().baseUrl(baseUrl()).apiKey("unused")
			.modelName(MODEL).maxSegmentsPerBatch(2048).build();
		var all = lc4j.embedAll(texts.stream().map(dev.langchain4j.data.segment.TextSegment::from).toList()).content();
		assertThat(all).hasSize(600);
		for (int i : new int[] { 0, 257, 599 }) {
			assertThat(all.get(i).vector()).as("segment %d", i).containsExactly(embed(texts.get(i)).get(0), within(1e-6f));
		}
		List<String> tooMany = new ArrayList<>();
		for (int i = 0; i < 2049; i++) {
			tooMany.add("x");
		}
		RawHttp.Response r = post(Map.of("input", tooMany));
		assertThat(r.status()).isEqualTo(400);
		assertThat(r.body()).contains("at most 2048").contains("\"param\":\"input\"");
		EngineProbes.checkInvariants(engine);
	}

	@Test
	void dimensionsKeepTheFirstValuesAtUnitLength() throws Exception {
		float[] full = embed("dimensions").get(0);
		RawHttp.Response r = post(Map.of("model", MODEL, "input", "dimensions", "dimensions", 8));
		assertThat(r.status()).as(r.body()).isEqualTo(200);
		float[] cut = floats(Api.JSON.readTree(r.body()).path("data").get(0).path("embedding"));
		assertThat(cut).hasSize(8);
		double norm = 0;
		for (int i = 0; i < 8; i++) {
			norm += (double) full[i] * full[i];
		}
		for (int i = 0; i < 8; i++) {
			assertThat(cut[i]).isCloseTo((float) (full[i] / Math.sqrt(norm)), within(1e-6f));
		}
	}

	@Test
	void badInputsAre400sNamingTheirField() throws Exception {
		Object[][] cases = { { Map.of("model", MODEL), "input" }, { Map.of("input", ""), "input" },
				{ Map.of("input", List.of("a", "")), "input" }, { Map.of("input", 5), "input" },
				{ Map.of("input", List.of(List.of(1, 99999))), "input" }, { Map.of("input", "a", "encoding_format", "int8"), "encoding_format" },
				{ Map.of("input", "a", "dimensions", 0), "dimensions" }, { Map.of("input", "a", "dimensions", 65), "dimensions" },
				{ Map.of("input", "a", "cache_salt", ""), "cache_salt" } };
		for (Object[] c : cases) {
			RawHttp.Response r = post(c[0]);
			assertThat(r.status()).as(c[0] + " -> " + r.body()).isEqualTo(400);
			JsonNode error = Api.JSON.readTree(r.body()).path("error");
			if (!c[1].equals("input") || !r.body().contains("vocabulary")) {
				assertThat(error.path("param").asString()).as(r.body()).isEqualTo(c[1]);
			}
		}
		RawHttp.Response other = post(Map.of("model", "nope", "input", "a"));
		assertThat(other.status()).isEqualTo(404);
		// an input past the context: a 400 that says so, and truncate_prompt_tokens keeps its end
		List<Integer> longIds = new ArrayList<>();
		for (int i = 0; i < engine.maxModelLen() + 5; i++) {
			longIds.add(3 + i % 200);
		}
		RawHttp.Response tooLong = post(Map.of("input", longIds));
		assertThat(tooLong.status()).isEqualTo(400);
		assertThat(tooLong.body()).contains("context_length_exceeded");
		RawHttp.Response cut = post(Map.of("input", longIds, "truncate_prompt_tokens", 16));
		assertThat(cut.status()).as(cut.body()).isEqualTo(200);
		assertThat(Api.JSON.readTree(cut.body()).path("usage").path("prompt_tokens").asInt()).isEqualTo(16);
		float[] tail = embed(longIds.subList(longIds.size() - 16, longIds.size())).get(0);
		assertThat(floats(Api.JSON.readTree(cut.body()).path("data").get(0).path("embedding"))).containsExactly(tail, within(1e-6f));
		EngineProbes.checkInvariants(engine);
	}
}
