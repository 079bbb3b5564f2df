package dev.blockserve.api;

import dev.blockserve.support.EngineProbes;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.completions.CompletionChoice;
import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;

import org.springframework.boot.test.context.SpringBootTest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** /v1/completions and the error cases, through the official OpenAI Java SDK and raw HTTP. */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=1024",
				"blockserve.api.max-request-size=64KB" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CompletionsApiTest extends OpenAiServerTest {

	final HttpClient http = HttpClient.newHttpClient();

	CompletionCreateParams.Builder greedy(String prompt, long maxTokens) {
		return CompletionCreateParams.builder().model("stories260K").prompt(prompt).maxTokens(maxTokens).temperature(0.0);
	}

	@Test
	void everyGoldenPromptGivesItsCompletionText() {
		for (GoldenCase c : SharedModels.golden("stories260K")) {
			Completion r = client.completions().create(greedy(c.promptText(), 96).build());
			CompletionChoice choice = r.choices().get(0);
			assertThat(choice.text()).as("prompt '%s'", c.promptText()).isEqualTo(c.completionText());
			assertThat(r.model()).isEqualTo("stories260K");
			assertThat(r.usage().orElseThrow().promptTokens()).isEqualTo(c.promptIds().length);
			boolean endedOnEos = c.greedyIds().length < 96;
			assertThat(choice.finishReason().asString()).isEqualTo(endedOnEos ? "stop" : "length");
		}
	}

	@Test
	void streamingConcatenatesToTheSameTextAndEndsWithUsage() {
		GoldenCase c = SharedModels.golden("stories260K").get(3);
		StringBuilder text = new StringBuilder();
		List<Completion> chunks;
		try (StreamResponse<Completion> s = client.completions()
			.createStreaming(greedy(c.promptText(), 96)
				.streamOptions(com.openai.models.chat.completions.ChatCompletionStreamOptions.builder().includeUsage(true).build())
				.build())) {
			chunks = s.stream().collect(Collectors.toList());
		}
		for (Completion ch : chunks) {
			ch.choices().forEach(x -> text.append(x.text()));
		}
		assertThat(text.toString()).isEqualTo(c.completionText());
		Completion last = chunks.get(chunks.size() - 1);
		assertThat(last.choices()).isEmpty();
		assertThat(last.usage().orElseThrow().completionTokens()).isEqualTo(c.greedyIds().length);
		assertThat(chunks.get(chunks.size() - 2).choices().get(0).finishReason()).isNotNull();
	}

	@Test
	void tokenIdPromptsSeveralPromptsAndN2() {
		Completion r = client.completions().create(CompletionCreateParams.builder().model("stories260K")
			.promptOfArrayOfTokenArrays(List.of(List.of(1L, 403L, 407L), List.of(1L)))
			.maxTokens(8).temperature(0.8).seed(5).n(2).build());
		assertThat(r.choices()).hasSize(4);
		assertThat(r.choices().stream().map(CompletionChoice::index)).containsExactly(0L, 1L, 2L, 3L);
		assertThat(r.usage().orElseThrow().promptTokens()).isEqualTo(4);
		assertThat(r.usage().orElseThrow().completionTokens()).isEqualTo(32);
	}

	@Test
	void stopStringsSeedsAndLogprobs() {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		Completion stopped = client.completions().create(greedy(c.promptText(), 96).stop("girl").build());
		assertThat(stopped.choices().get(0).text()).isEqualTo(c.completionText().substring(0, c.completionText().indexOf("girl")));
		assertThat(stopped.choices().get(0).finishReason().asString()).isEqualTo("stop");

		CompletionCreateParams seeded = CompletionCreateParams.builder().model("stories260K").prompt("Tim had a red ball.")
			.maxTokens(30).temperature(1.0).topP(0.9).seed(42).build();
		String a = client.completions().create(seeded).choices().get(0).text();
		String b = client.completions().create(seeded).choices().get(0).text();
		assertThat(a).isEqualTo(b).isNotEmpty();

		Completion lp = client.completions().create(greedy("Once upon a time", 5).logprobs(3).build());
		var logprobs = lp.choices().get(0).logprobs().orElseThrow();
		assertThat(logprobs.tokens().orElseThrow()).hasSize(5);
		assertThat(logprobs.topLogprobs().orElseThrow()).hasSize(5).allSatisfy(m -> assertThat(m._additionalProperties()).hasSize(3));
		assertThat(logprobs.tokenLogprobs().orElseThrow()).allSatisfy(v -> assertThat(v).isLessThanOrEqualTo(0.0));
		assertThat(String.join("", logprobs.tokens().orElseThrow())).isEqualTo(lp.choices().get(0).text());
	}

	String detokenize(int... ids) throws Exception {
		HttpResponse<String> r = post("/detokenize", Api.JSON.writeValueAsString(java.util.Map.of("tokens", ids)));
		assertThat(r.statusCode()).isEqualTo(200);
		return Api.JSON.readTree(r.body()).get("prompt").asString();
	}

	/**
	 * OpenAI's logit_bias through the SDK: -100 bans the greedy token (the second best comes instead), +100 on a
	 * token makes every token that one. Before it was read, the field was ignored and the golden text came back.
	 */
	@Test
	void logitBiasBansAndForcesTokens() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		int first = c.greedyIds()[0];
		Completion top2 = client.completions().create(greedy(c.promptText(), 1).logprobs(2).build());
		String second = top2.choices().get(0).logprobs().orElseThrow().topLogprobs().orElseThrow().get(0)
			._additionalProperties().keySet().stream().skip(1).findFirst().orElseThrow();
		Completion banned = client.completions().create(greedy(c.promptText(), 1)
			.logitBias(CompletionCreateParams.LogitBias.builder()
				.putAdditionalProperty(String.valueOf(first), com.openai.core.JsonValue.from(-100)).build())
			.build());
		assertThat(banned.choices().get(0).text()).isEqualTo(second).isNotEqualTo(detokenize(first));

		int forced = c.greedyIds()[1] == first ? c.greedyIds()[2] : c.greedyIds()[1];
		Completion all = client.completions().create(greedy(c.promptText(), 6)
			.logitBias(CompletionCreateParams.LogitBias.builder()
				.putAdditionalProperty(String.valueOf(forced), com.openai.core.JsonValue.from(100)).build())
			.build());
		assertThat(all.choices().get(0).text()).isEqualTo(detokenize(forced, forced, forced, forced, forced, forced));
		assertThat(all.usage().orElseThrow().completionTokens()).isEqualTo(6);
	}

	/** vLLM's min_tokens holds EOS back; its stop_token_ids end the output without the stop token's text. */
	@Test
	void minTokensAndStopTokenIds() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(2);
		// +100 on EOS (id 2) makes it the greedy token at once; min_tokens holds it back for five tokens
		CompletionCreateParams.LogitBias eos = CompletionCreateParams.LogitBias.builder()
			.putAdditionalProperty("2", com.openai.core.JsonValue.from(100)).build();
		Completion atOnce = client.completions().create(greedy(c.promptText(), 96).logitBias(eos).build());
		assertThat(atOnce.usage().orElseThrow().completionTokens()).isEqualTo(1);
		assertThat(atOnce.choices().get(0).text()).isEmpty();
		Completion held = client.completions().create(greedy(c.promptText(), 96).logitBias(eos)
			.putAdditionalBodyProperty("min_tokens", com.openai.core.JsonValue.from(5)).build());
		assertThat(held.usage().orElseThrow().completionTokens()).isEqualTo(6);
		assertThat(held.choices().get(0).finishReason().asString()).isEqualTo("stop");
		// (detokenize drops the leading blank that the first token has in context)
		assertThat(c.completionText()).startsWith(held.choices().get(0).text());
		assertThat(held.choices().get(0).text().strip()).isEqualTo(detokenize(java.util.Arrays.copyOf(c.greedyIds(), 5)));

		int[] g = c.greedyIds();
		int at = 1;
		while (contains(g, at, g[at])) {
			at++; // the first token that did not come before: the output must stop there, not earlier
		}
		Completion stopped = client.completions().create(greedy(c.promptText(), 96)
			.putAdditionalBodyProperty("stop_token_ids", com.openai.core.JsonValue.from(List.of(g[at]))).build());
		assertThat(stopped.choices().get(0).finishReason().asString()).isEqualTo("stop");
		assertThat(stopped.usage().orElseThrow().completionTokens()).isEqualTo(at + 1);
		assertThat(c.completionText()).startsWith(stopped.choices().get(0).text());
		assertThat(stopped.choices().get(0).text().strip()).isEqualTo(detokenize(java.util.Arrays.copyOf(g, at)));

		// under min_tokens neither the stop token nor a stop string ends it
		Completion both = client.completions().create(greedy(c.promptText(), 96).stop(detokenize(g[at]).strip())
			.putAdditionalBodyProperty("stop_token_ids", com.openai.core.JsonValue.from(List.of(g[at])))
			.putAdditionalBodyProperty("min_tokens", com.openai.core.JsonValue.from(at + 2)).build());
		assertThat(both.usage().orElseThrow().completionTokens()).isGreaterThan(at + 1);
	}

	/**
	 * vLLM's include_stop_str_in_output keeps the stop string, or the stop token's text, at the end of the
	 * output; its allowed_token_ids limits sampling to the listed tokens.
	 */
	@Test
	void includeStopStrInOutputAndAllowedTokenIds() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(2);
		String full = c.completionText();
		String stop = full.substring(6, 10);
		int at = full.indexOf(stop);
		Completion cut = client.completions().create(greedy(c.promptText(), 96).stop(stop).build());
		assertThat(cut.choices().get(0).text()).isEqualTo(full.substring(0, at));
		Completion kept = client.completions().create(greedy(c.promptText(), 96).stop(stop)
			.putAdditionalBodyProperty("include_stop_str_in_output", com.openai.core.JsonValue.from(true)).build());
		assertThat(kept.choices().get(0).text()).isEqualTo(full.substring(0, at + stop.length()));
		assertThat(kept.choices().get(0).finishReason().asString()).isEqualTo("stop");

		int[] g = c.greedyIds();
		int k = 1;
		while (contains(g, k, g[k])) {
			k++;
		}
		Completion token = client.completions().create(greedy(c.promptText(), 96)
			.putAdditionalBodyProperty("stop_token_ids", com.openai.core.JsonValue.from(List.of(g[k])))
			.putAdditionalBodyProperty("include_stop_str_in_output", com.openai.core.JsonValue.from(true)).build());
		assertThat(token.choices().get(0).text().strip()).isEqualTo(detokenize(java.util.Arrays.copyOf(g, k + 1)));

		// one allowed token: sampled at temperature 1, it is the whole output, over and over
		int only = g[1];
		Completion allowed = client.completions().create(greedy(c.promptText(), 4).temperature(1.0).seed(5L)
			.logprobs(0L)
			.putAdditionalBodyProperty("allowed_token_ids", com.openai.core.JsonValue.from(List.of(only)))
			.putAdditionalBodyProperty("ignore_eos", com.openai.core.JsonValue.from(true)).build());
		List<String> tokens = allowed.choices().get(0).logprobs().orElseThrow().tokens().orElseThrow();
		assertThat(tokens).hasSize(4);
		assertThat(tokens.subList(1, 4)).containsOnly(tokens.get(1));
		assertThat(tokens.get(0).strip()).isEqualTo(detokenize(only).strip());
		for (String bad : new String[] { "[]", "[99999]", "[-1]", "\"x\"" }) {
			HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
				.header("Content-Type", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"x\", \"max_tokens\": 1, \"allowed_token_ids\": " + bad + "}"))
				.build(), HttpResponse.BodyHandlers.ofString());
			assertThat(r.statusCode()).as(bad + " " + r.body()).isEqualTo(400);
			assertThat(r.body()).contains("allowed_token_ids");
		}
		// allowed ids that the request's own grammar never accepts: known only when it runs, still the client's error
		String word = "{\"prompt\": \"x\", \"max_tokens\": 4, \"guided_regex\": \"[0-9]+\", \"allowed_token_ids\": [" + only + "]";
		HttpResponse<String> none = post(word + "}");
		assertThat(none.statusCode()).as(none.body()).isEqualTo(400);
		assertThat(none.body()).contains("\"type\":\"invalid_request_error\"")
			.contains("allowed_token_ids leaves no token that the request's structured output (response_format, guided decoding or tools) accepts after 0 generated tokens");
		HttpResponse<String> streamed = post(word + ", \"stream\": true}");
		assertThat(streamed.body()).contains("allowed_token_ids leaves no token").contains("invalid_request_error");
		// min_tokens past the end a one-token allow-list forces: EOS is all that may follow, and it may not yet
		HttpResponse<String> early = post("{\"prompt\": \"x\", \"max_tokens\": 4, \"min_tokens\": 3, \"allowed_token_ids\": [2]}");
		assertThat(early.statusCode()).as(early.body()).isEqualTo(400);
		assertThat(early.body()).contains("min_tokens: every token that may come next ends the output");
	}

	/** vLLM's return_tokens_as_token_ids on /v1/completions: the legacy tokens list and top_logprobs keys are "token_id:ID". */
	@Test
	void returnTokensAsTokenIds() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(1);
		Completion r = client.completions().create(greedy(c.promptText(), 12).logprobs(2L)
			.putAdditionalBodyProperty("return_tokens_as_token_ids", com.openai.core.JsonValue.from(true)).build());
		var lp = r.choices().get(0).logprobs().orElseThrow();
		int[] ids = lp.tokens().orElseThrow().stream().peek(t -> assertThat(t).matches("token_id:[0-9]+"))
			.mapToInt(t -> Integer.parseInt(t.substring("token_id:".length()))).toArray();
		assertThat(ids).containsExactly(java.util.Arrays.copyOf(c.greedyIds(), 12));
		assertThat(detokenize(ids)).isEqualTo(r.choices().get(0).text());
		assertThat(lp.topLogprobs().orElseThrow()).hasSize(12)
			.allSatisfy(m -> assertThat(m._additionalProperties().keySet()).isNotEmpty().allMatch(k -> k.matches("token_id:[0-9]+")));
	}

	/**
	 * vLLM's bad_words: a word of the golden output, banned, is not in the new output as any of its token
	 * sequences (as written and after a space), and the output changes from there; bad values are a 400.
	 */
	@Test
	void badWordsKeepAWordOutOfTheOutput() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		String word = c.completionText().trim().split("\\s+")[2].replaceAll("[^A-Za-z]", "");
		Completion r = client.completions().create(greedy(c.promptText(), 48).logprobs(0L)
			.putAdditionalBodyProperty("bad_words", com.openai.core.JsonValue.from(List.of(word)))
			.putAdditionalBodyProperty("return_tokens_as_token_ids", com.openai.core.JsonValue.from(true)).build());
		List<Integer> ids = r.choices().get(0).logprobs().orElseThrow().tokens().orElseThrow().stream()
			.map(t -> Integer.parseInt(t.substring("token_id:".length()))).toList();
		for (String form : new String[] { word, " " + word }) {
			List<Integer> banned = Api.JSON.readTree(post("/tokenize", Api.JSON.writeValueAsString(
					java.util.Map.of("prompt", form, "add_special_tokens", false))).body()).path("tokens").valueStream()
				.map(n -> n.asInt()).toList();
			assertThat(java.util.Collections.indexOfSubList(ids, banned)).as("'%s' %s in %s", form, banned, ids).isEqualTo(-1);
		}
		assertThat(r.choices().get(0).text()).isNotEqualTo(c.completionText().substring(0, r.choices().get(0).text().length()));
		for (String bad : new String[] { "\"x\"", "[\"\"]", "[1]", "[\" \"]" }) {
			HttpResponse<String> e = post("{\"prompt\": \"x\", \"max_tokens\": 1, \"bad_words\": " + bad + "}");
			assertThat(e.statusCode()).as(bad).isEqualTo(400);
			assertThat(e.body()).contains("bad_words");
		}
	}

	private HttpResponse<String> post(String json) throws Exception {
		return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
				HttpResponse.BodyHandlers.ofString());
	}

	private static boolean contains(int[] a, int end, int v) {
		for (int i = 0; i < end; i++) {
			if (a[i] == v) {
				return true;
			}
		}
		return false;
	}

	/**
	 * Bad sampling fields are 400s naming the field; fields that would change the answer's meaning (suffix,
	 * best_of other than n) are refused, not ignored.
	 */
	@Test
	void badSamplingFieldsAre400sNamingTheField() throws Exception {
		String[][] cases = {
				{ "\"logit_bias\": {\"abc\": 1}", "logit_bias", "keys must be token ids" },
				{ "\"logit_bias\": {\"99999\": 1}", "logit_bias", "outside the vocabulary [0, 512)" },
				{ "\"logit_bias\": {\"5\": 101}", "logit_bias", "between -100 and 100" },
				{ "\"logit_bias\": {\"5\": \"up\"}", "logit_bias", "between -100 and 100" },
				{ "\"logit_bias\": [5]", "logit_bias", "must be an object" },
				{ "\"min_tokens\": 10", "min_tokens", "less than or equal to 'max_tokens'" },
				{ "\"min_tokens\": -1", "min_tokens", "between 0 and" },
				{ "\"stop_token_ids\": [100000]", "stop_token_ids", "outside the vocabulary [0, 512)" },
				{ "\"stop_token_ids\": \"2\"", "stop_token_ids", "array of token ids" },
				{ "\"stop_token_ids\": [-3]", "stop_token_ids", "array of token ids" },
				{ "\"suffix\": \"end.\"", "suffix", "not supported" },
				{ "\"best_of\": 3", "best_of", "best_of 3, n 1" },
				{ "\"best_of\": 3, \"n\": 2", "best_of", "best_of 3, n 2" } };
		for (String[] k : cases) {
			HttpResponse<String> r = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 5, " + k[0] + "}");
			assertThat(r.statusCode()).as(k[0]).isEqualTo(400);
			assertThat(r.body()).as(k[0]).contains("\"param\":\"" + k[1] + "\"").contains(k[2]);
		}
		for (String fine : new String[] { "\"suffix\": \"\"", "\"suffix\": null", "\"best_of\": 2, \"n\": 2", "\"best_of\": 1" }) {
			assertThat(post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 2, " + fine + "}").statusCode()).as(fine)
				.isEqualTo(200);
		}
	}

	@Test
	void echoPrependsThePrompt() {
		GoldenCase c = SharedModels.golden("stories260K").get(1);
		Completion r = client.completions().create(greedy(c.promptText(), 96).echo(true).build());
		assertThat(r.choices().get(0).text()).isEqualTo(c.promptText() + c.completionText());
		StringBuilder streamed = new StringBuilder();
		try (StreamResponse<Completion> s = client.completions().createStreaming(greedy(c.promptText(), 96).echo(true).build())) {
			s.stream().forEach(ch -> ch.choices().forEach(x -> streamed.append(x.text())));
		}
		assertThat(streamed.toString()).isEqualTo(c.promptText() + c.completionText());
	}

	/**
	 * echo with logprobs, as lm-evaluation-harness scores a continuation (token-id prompt, max_tokens 1,
	 * temperature 0, logprobs 1): one entry per prompt token and per new token, the first null. The entry of
	 * the golden prompt's first greedy token, appended to the prompt, is the reference's log softmax. It used
	 * to be a 400 ("prompt logprobs are not computed").
	 */
	/**
	 * vLLM's truncate_prompt_tokens keeps a prompt's last k tokens: the same output as sending those k
	 * tokens, usage counting k, echo repeating the kept text; 0 and -2 are 400s naming the field.
	 */
	@Test
	void truncatePromptTokensKeepsTheLastTokens() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(4);
		int[] ids = c.promptIds();
		int k = 3;
		int[] last = java.util.Arrays.copyOfRange(ids, ids.length - k, ids.length);
		var whole = Api.JSON.readTree(post("/v1/completions", Api.JSON.writeValueAsString(java.util.Map.of("prompt", ids,
				"max_tokens", 6, "temperature", 0, "truncate_prompt_tokens", k, "echo", true))).body());
		var cut = Api.JSON.readTree(post("/v1/completions", Api.JSON.writeValueAsString(java.util.Map.of("prompt", last,
				"max_tokens", 6, "temperature", 0))).body());
		assertThat(ids.length).isGreaterThan(k);
		assertThat(whole.path("usage").path("prompt_tokens").asInt()).isEqualTo(k);
		String lastText;
		try (var tok = dev.blockserve.model.TextTokenizer.load(SharedModels.dir("stories260K"))) {
			lastText = tok.decode(last, true);
		}
		assertThat(whole.path("choices").get(0).path("text").asString())
			.isEqualTo(lastText + cut.path("choices").get(0).path("text").asString());
		// a text prompt is cut after tokenising, and a k beyond its length keeps it whole
		var text = Api.JSON.readTree(post("/v1/completions", "{\"prompt\": \"Once upon a time there was\", \"max_tokens\": 1, "
				+ "\"truncate_prompt_tokens\": 2}").body());
		assertThat(text.path("usage").path("prompt_tokens").asInt()).isEqualTo(2);
		var all = Api.JSON.readTree(post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 1, "
				+ "\"truncate_prompt_tokens\": 1000, \"echo\": true}").body());
		assertThat(all.path("choices").get(0).path("text").asString()).startsWith("Once");
		for (String bad : new String[] { "0", "-2", "1.5" }) {
			HttpResponse<String> r = post("/v1/completions", "{\"prompt\": \"x\", \"truncate_prompt_tokens\": " + bad + "}");
			assertThat(r.statusCode()).as(bad).isEqualTo(400);
			assertThat(Api.JSON.readTree(r.body()).path("error").path("param").asString()).isEqualTo("truncate_prompt_tokens");
		}
	}

	@Test
	void echoWithLogprobsScoresThePrompt() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(4);
		int[] prompt = java.util.Arrays.copyOf(c.promptIds(), c.promptIds().length + 1);
		prompt[prompt.length - 1] = c.greedyIds()[0];
		String body = Api.JSON.writeValueAsString(java.util.Map.of("model", "stories260K", "prompt", prompt, "max_tokens", 1,
				"temperature", 0, "logprobs", 1, "echo", true));
		HttpResponse<String> r = post("/v1/completions", body);
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		var choice = Api.JSON.readTree(r.body()).path("choices").get(0);
		var lp = choice.path("logprobs");
		int n = prompt.length + 1;
		assertThat(lp.path("tokens").size()).isEqualTo(n);
		assertThat(lp.path("token_logprobs").size()).isEqualTo(n);
		assertThat(lp.path("top_logprobs").size()).isEqualTo(n);
		assertThat(lp.path("token_logprobs").get(0).isNull()).isTrue();
		assertThat(lp.path("top_logprobs").get(0).isNull()).isTrue();
		StringBuilder joined = new StringBuilder();
		for (int i = 0; i < n; i++) {
			assertThat(lp.path("text_offset").get(i).asInt()).as("offset %d", i).isEqualTo(joined.length());
			joined.append(lp.path("tokens").get(i).asString());
			if (i > 0) {
				assertThat(lp.path("token_logprobs").get(i).asDouble()).isLessThanOrEqualTo(0.0);
				assertThat(lp.path("top_logprobs").get(i).size()).isEqualTo(1);
			}
		}
		assertThat(joined.toString()).isEqualTo(choice.path("text").asString());
		int last = prompt.length - 1;
		double ref = SharedModels.logSoftmax(c.firstStepLogits(), prompt[last]);
		assertThat(lp.path("token_logprobs").get(last).asDouble()).isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-4));
		// lm-evaluation-harness's is_greedy: the token's logprob is the top one (it is the golden's greedy token)
		assertThat(lp.path("top_logprobs").get(last).properties().iterator().next().getValue().asDouble())
			.isEqualTo(lp.path("token_logprobs").get(last).asDouble());

		// the SDK reads it, and the stream gives the same text and entries
		Completion sdk = client.completions().create(CompletionCreateParams.builder().model("stories260K")
			.promptOfArrayOfTokens(java.util.Arrays.stream(prompt).mapToObj(Long::valueOf).toList()).maxTokens(1L)
			.temperature(0.0).logprobs(1L).echo(true).build());
		assertThat(sdk.choices().get(0).text()).isEqualTo(choice.path("text").asString());
		assertThat(sdk.choices().get(0).logprobs().orElseThrow().tokens().orElseThrow()).hasSize(n);
		StringBuilder streamed = new StringBuilder();
		List<String> streamedTokens = new ArrayList<>();
		List<Long> streamedOffsets = new ArrayList<>();
		try (StreamResponse<Completion> st = client.completions().createStreaming(CompletionCreateParams.builder()
			.model("stories260K").promptOfArrayOfTokens(java.util.Arrays.stream(prompt).mapToObj(Long::valueOf).toList())
			.maxTokens(1L).temperature(0.0).logprobs(1L).echo(true).build())) {
			st.stream().forEach(ch -> ch.choices().forEach(x -> {
				streamed.append(x.text());
				x.logprobs().flatMap(l -> l.tokens()).ifPresent(streamedTokens::addAll);
				x.logprobs().flatMap(l -> l.textOffset()).ifPresent(streamedOffsets::addAll);
			}));
		}
		assertThat(streamed.toString()).isEqualTo(choice.path("text").asString());
		assertThat(String.join("", streamedTokens)).isEqualTo(joined.toString());
		for (int i = 0; i < n; i++) { // offsets count from the start of the whole text, chunk after chunk
			assertThat(streamedOffsets.get(i)).isEqualTo(lp.path("text_offset").get(i).asLong());
		}
	}

	/**
	 * lm-evaluation-harness sends its requests in batches: several token-id prompts in one body (echo,
	 * logprobs 1, max_tokens 1, a seed) and reads choice i for prompt i. Each choice's token_logprobs are
	 * what the prompt gives alone.
	 */
	@Test
	void echoWithLogprobsInABatchOfPrompts() throws Exception {
		List<GoldenCase> cases = SharedModels.golden("stories260K");
		List<int[]> prompts = List.of(cases.get(0).promptIds(), cases.get(3).promptIds(), cases.get(5).promptIds());
		java.util.function.Function<Object, String> body = p -> Api.JSON.writeValueAsString(java.util.Map.of("model", "stories260K",
				"prompt", p, "max_tokens", 1, "temperature", 0, "logprobs", 1, "echo", true, "seed", 1234));
		HttpResponse<String> batch = post("/v1/completions", body.apply(prompts));
		assertThat(batch.statusCode()).as(batch.body()).isEqualTo(200);
		var choices = Api.JSON.readTree(batch.body()).path("choices");
		assertThat(choices.size()).isEqualTo(prompts.size());
		for (int i = 0; i < prompts.size(); i++) {
			var alone = Api.JSON.readTree(post("/v1/completions", body.apply(prompts.get(i))).body()).path("choices").get(0);
			var choice = choices.get(i);
			assertThat(choice.path("index").asInt()).isEqualTo(i);
			assertThat(choice.path("logprobs").path("token_logprobs").size()).isEqualTo(prompts.get(i).length + 1);
			assertThat(choice.path("logprobs").path("tokens")).isEqualTo(alone.path("logprobs").path("tokens"));
			for (int j = 1; j < prompts.get(i).length + 1; j++) {
				assertThat(choice.path("logprobs").path("token_logprobs").get(j).asDouble()).as("prompt %d position %d", i, j)
					.isCloseTo(alone.path("logprobs").path("token_logprobs").get(j).asDouble(), org.assertj.core.data.Offset.offset(1e-4));
			}
		}
	}

	/**
	 * vLLM's prompt_logprobs: per prompt token (the first null) a map from token id to logprob, rank and text,
	 * the prompt token first; the same values the echo form gives. Without echo the ordinary logprobs stay
	 * the generated tokens' only; a stream asking for it is a 400, as in vLLM.
	 */
	@Test
	void vllmPromptLogprobs() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(4);
		int[] prompt = java.util.Arrays.copyOf(c.promptIds(), c.promptIds().length + 1);
		prompt[prompt.length - 1] = c.greedyIds()[0];
		HttpResponse<String> r = post("/v1/completions", Api.JSON.writeValueAsString(java.util.Map.of("prompt", prompt,
				"max_tokens", 2, "temperature", 0, "logprobs", 1, "prompt_logprobs", 2)));
		assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
		var choice = Api.JSON.readTree(r.body()).path("choices").get(0);
		assertThat(choice.path("logprobs").path("tokens").size()).as("generated tokens only").isEqualTo(2);
		var plp = choice.path("prompt_logprobs");
		assertThat(plp.size()).isEqualTo(prompt.length);
		assertThat(plp.get(0).isNull()).isTrue();
		HttpResponse<String> echo = post("/v1/completions", Api.JSON.writeValueAsString(java.util.Map.of("prompt", prompt,
				"max_tokens", 2, "temperature", 0, "logprobs", 1, "echo", true)));
		var legacy = Api.JSON.readTree(echo.body()).path("choices").get(0).path("logprobs").path("token_logprobs");
		for (int j = 1; j < prompt.length; j++) {
			var entries = plp.get(j).properties().iterator();
			var mine = entries.next();
			assertThat(mine.getKey()).isEqualTo(String.valueOf(prompt[j]));
			assertThat(mine.getValue().path("logprob").asDouble()).isEqualTo(legacy.get(j).asDouble());
			int rank = mine.getValue().path("rank").asInt();
			assertThat(rank).isPositive();
			assertThat(mine.getValue().has("decoded_token")).isTrue();
			int alternatives = 0;
			while (entries.hasNext()) {
				var alt = entries.next().getValue();
				alternatives++;
				assertThat(alt.path("rank").asInt()).isBetween(1, 2);
				if (rank > 2) { // a prompt token outside the top 2 is less likely than both
					assertThat(alt.path("logprob").asDouble()).isGreaterThanOrEqualTo(mine.getValue().path("logprob").asDouble());
				}
			}
			assertThat(alternatives).isBetween(1, 2); // the top 2, less the prompt token when it is one of them
		}
		var last = plp.get(prompt.length - 1).properties().iterator().next().getValue();
		assertThat(last.path("rank").asInt()).as("the golden's greedy token").isEqualTo(1);
		assertThat(last.path("logprob").asDouble()).isCloseTo(SharedModels.logSoftmax(c.firstStepLogits(), prompt[prompt.length - 1]),
				org.assertj.core.data.Offset.offset(1e-4));

		HttpResponse<String> streamed = post("/v1/completions", "{\"prompt\": \"x\", \"stream\": true, \"prompt_logprobs\": 1}");
		assertThat(streamed.statusCode()).isEqualTo(400);
		assertThat(streamed.body()).contains("\"param\":\"prompt_logprobs\"");
		assertThat(post("/v1/completions", "{\"prompt\": \"x\", \"prompt_logprobs\": 21}").body())
			.contains("\"param\":\"prompt_logprobs\"");
	}

	/** Streamed text_offset counts from the start of the choice's text, not of each chunk (it restarted at 0). */
	@Test
	void streamedTextOffsetsAreAbsolute() {
		List<Long> offsets = new ArrayList<>();
		StringBuilder text = new StringBuilder();
		List<String> tokens = new ArrayList<>();
		try (StreamResponse<Completion> st = client.completions().createStreaming(greedy("Once upon a time", 8).logprobs(0).build())) {
			st.stream().forEach(ch -> ch.choices().forEach(x -> {
				text.append(x.text());
				x.logprobs().flatMap(l -> l.tokens()).ifPresent(tokens::addAll);
				x.logprobs().flatMap(l -> l.textOffset()).ifPresent(offsets::addAll);
			}));
		}
		assertThat(offsets).hasSize(8);
		long expected = 0;
		for (int i = 0; i < 8; i++) {
			assertThat(offsets.get(i)).as("token %d", i).isEqualTo(expected);
			expected += tokens.get(i).length();
		}
	}

	@Test
	void errorsArriveAsTheSdksExceptionTypes() {
		assertThatThrownBy(() -> client.completions().create(greedy("x", 5).temperature(-1.0).build()))
			.isInstanceOfSatisfying(BadRequestException.class, e -> {
				assertThat(e.statusCode()).isEqualTo(400);
				assertThat(e.param()).contains("temperature");
			});
		assertThatThrownBy(() -> client.completions().create(greedy("x", 5000).build()))
			.isInstanceOfSatisfying(BadRequestException.class, e -> {
				assertThat(e.getMessage()).contains("maximum context length is 512").contains("5000 for the completion");
				assertThat(e.code()).contains("context_length_exceeded");
			});
		assertThatThrownBy(() -> client.completions().create(greedy("x", 5).model("gpt-4").build()))
			.isInstanceOfSatisfying(NotFoundException.class, e -> assertThat(e.getMessage()).contains("gpt-4"));
		assertThatThrownBy(() -> client.chat().completions().create(ChatCompletionCreateParams.builder()
			.model("stories260K").addUserMessage("hi").build()))
			.isInstanceOfSatisfying(BadRequestException.class, e -> assertThat(e.getMessage()).contains("no chat template"));
	}

	HttpResponse<String> post(String path, String body) throws Exception {
		return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
			.timeout(Duration.ofSeconds(60))
			.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
				HttpResponse.BodyHandlers.ofString());
	}

	@Test
	void rawErrorBodies() throws Exception {
		HttpResponse<String> malformed = post("/v1/completions", "{\"model\": \"stories260K\", \"prompt\": ");
		assertThat(malformed.statusCode()).isEqualTo(400);
		assertThat(malformed.body()).startsWith("{\"error\":{\"message\":\"the request body is not valid JSON")
			.contains("\"type\":\"invalid_request_error\"").contains("\"param\":null").contains("\"code\":null");
		HttpResponse<String> big = post("/v1/completions",
				"{\"model\": \"stories260K\", \"prompt\": \"" + "a".repeat(100_000) + "\"}");
		assertThat(big.statusCode()).isEqualTo(413);
		assertThat(big.body()).contains("\"code\":\"request_too_large\"");
		HttpResponse<String> wrongType = post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}");
		assertThat(wrongType.statusCode()).isEqualTo(400);
		assertThat(wrongType.body()).contains("\"param\":\"max_tokens\"");
		HttpResponse<String> unknownFields = post("/v1/completions",
				"{\"prompt\": \"x\", \"max_tokens\": 2, \"frobnicate\": {\"a\": 1}, \"user\": \"u1\", \"priority\": -3}");
		assertThat(unknownFields.statusCode()).isEqualTo(200);
		HttpResponse<String> noRoute = post("/v1/nope", "{}");
		assertThat(noRoute.statusCode()).isEqualTo(404);
		assertThat(noRoute.body()).startsWith("{\"error\":");
		assertThat(post("/v1/completions", "[1,2]").statusCode()).isEqualTo(400);
		assertThat(post("/v1/completions", "{\"prompt\": \"x\", \"priority\": \"high\"}").body()).contains("\"param\":\"priority\"");
		assertThat(post("/v1/completions", "").statusCode()).isEqualTo(400);
	}

	@Test
	void errorsBeforeTheBodyIsReadLeaveTheConnectionUsable() throws Exception {
		// An unknown route is answered without reading the body; its bytes must not stay on the kept-alive
		// connection and be taken for the next request (this hung once in the full suite).
		for (int i = 0; i < 100; i++) {
			HttpResponse<String> nope = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/nope"))
				.timeout(Duration.ofSeconds(5)).header("Content-Type", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"" + "x".repeat(i * 37) + "\"}")).build(),
					HttpResponse.BodyHandlers.ofString());
			assertThat(nope.statusCode()).isEqualTo(404);
			HttpResponse<String> bad = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
				.timeout(Duration.ofSeconds(5)).header("Content-Type", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString("[1,2]")).build(), HttpResponse.BodyHandlers.ofString());
			assertThat(bad.statusCode()).as("request %d after an unread body", i).isEqualTo(400);
		}
	}

	@Test
	void rawSseFraming() throws Exception {
		HttpResponse<String> r = post("/v1/completions",
				"{\"prompt\": \"Once upon a time\", \"max_tokens\": 6, \"temperature\": 0, \"stream\": true}");
		assertThat(r.statusCode()).isEqualTo(200);
		assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
		String[] events = r.body().split("\n\n");
		assertThat(events.length).isGreaterThan(2);
		for (String e : events) {
			assertThat(e).startsWith("data: ");
		}
		assertThat(events[events.length - 1]).isEqualTo("data: [DONE]");
		assertThat(events[0]).contains("\"object\":\"text_completion\"").contains("\"finish_reason\":null");
	}

	/** vLLM's continuous_usage_stats: every chunk of a stream carries the usage so far, the last one the total. */
	@Test
	void continuousUsageStatsCountTokensInEveryChunk() throws Exception {
		HttpResponse<String> r = post("/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 6, "
				+ "\"temperature\": 0, \"ignore_eos\": true, \"stream\": true, "
				+ "\"stream_options\": {\"include_usage\": true, \"continuous_usage_stats\": true}}");
		assertThat(r.statusCode()).isEqualTo(200);
		List<Integer> completion = new ArrayList<>();
		tools.jackson.databind.JsonNode last = null;
		for (String e : r.body().split("\n\n")) {
			if (e.equals("data: [DONE]")) {
				continue;
			}
			tools.jackson.databind.JsonNode chunk = Api.JSON.readTree(e.substring(6));
			assertThat(chunk.has("usage")).as(e).isTrue();
			assertThat(chunk.path("usage").path("prompt_tokens").asInt()).isEqualTo(5);
			if (!chunk.path("choices").isEmpty()) {
				completion.add(chunk.path("usage").path("completion_tokens").asInt());
			}
			last = chunk;
		}
		assertThat(completion).containsExactly(1, 2, 3, 4, 5, 6, 6); // the last: the chunk with the finish reason
		assertThat(last.path("choices").isEmpty()).as("the usage-only chunk comes last").isTrue();
		assertThat(last.path("usage").path("total_tokens").asInt()).isEqualTo(11);
		// without it, only that last chunk has usage
		HttpResponse<String> plain = post("/v1/completions", "{\"prompt\": \"Once upon a time\", \"max_tokens\": 6, "
				+ "\"temperature\": 0, \"ignore_eos\": true, \"stream\": true, \"stream_options\": {\"include_usage\": true}}");
		assertThat(plain.body().split("\"usage\"").length - 1).isEqualTo(1);
	}

	@Test
	void tokenizeDetokenizeModelsHealth() throws Exception {
		HttpResponse<String> t = post("/tokenize", "{\"prompt\": \"Once upon a time\"}");
		assertThat(t.body()).isEqualTo("{\"count\":5,\"max_model_len\":512,\"tokens\":[1,403,407,261,378]}");
		HttpResponse<String> d = post("/detokenize", "{\"tokens\": [403,407,261,378]}");
		assertThat(d.body()).isEqualTo("{\"prompt\":\"Once upon a time\"}");
		assertThat(client.models().list().data()).singleElement().satisfies(m -> assertThat(m.id()).isEqualTo("stories260K"));
		HttpResponse<String> h = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health")).build(),
				HttpResponse.BodyHandlers.ofString());
		assertThat(h.statusCode()).isEqualTo(200);
	}

	@Test
	void aCancelledStreamReturnsItsBlocksWithinASecond() throws Exception {
		HttpResponse<InputStream> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
			.header("Content-Type", "application/json")
			.POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Once\", \"max_tokens\": 480, \"ignore_eos\": true, \"stream\": true}"))
			.build(), HttpResponse.BodyHandlers.ofInputStream());
		BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
		int events = 0;
		while (events < 5) {
			if (in.readLine().startsWith("data: ")) {
				events++;
			}
		}
		assertThat(EngineProbes.usedBlocks(engine)).isPositive();
		r.body().close();
		long deadline = System.nanoTime() + 1_000_000_000L;
		while (EngineProbes.usedBlocks(engine) > 0 && System.nanoTime() < deadline) {
			Thread.sleep(10);
		}
		assertThat(EngineProbes.usedBlocks(engine)).as("blocks held one second after the client went away").isZero();
	}

	@Test
	void sixtyFourConcurrentStreamsGiveTheirSoloText() throws Exception {
		List<GoldenCase> cases = SharedModels.golden("stories260K");
		ExecutorService pool = Executors.newFixedThreadPool(64);
		try {
			List<Future<String>> futures = new ArrayList<>();
			for (int i = 0; i < 64; i++) {
				GoldenCase c = cases.get(i % cases.size());
				futures.add(pool.submit(() -> {
					StringBuilder sb = new StringBuilder();
					try (StreamResponse<Completion> s = client.completions().createStreaming(greedy(c.promptText(), 96).build())) {
						s.stream().forEach(ch -> ch.choices().forEach(x -> sb.append(x.text())));
					}
					return sb.toString();
				}));
			}
			for (int i = 0; i < 64; i++) {
				assertThat(futures.get(i).get()).as("stream %d", i).isEqualTo(cases.get(i % cases.size()).completionText());
			}
		}
		finally {
			pool.shutdownNow();
		}
		EngineProbes.checkInvariants(engine);
	}

	/**
	 * vLLM's cache_salt: a prompt reuses cached blocks only under the salt that cached them (the official
	 * SDK reads usage.prompt_tokens_details.cached_tokens); a bad salt is a 400 naming the field.
	 */
	@Test
	void cacheSaltsKeepPrefixCachesApart() throws Exception {
		String prompt = "Story " + System.nanoTime() + ": Once upon a time, there was a little girl named Lily. "
				+ "She liked to play in the park with her big red ball.";
		java.util.function.Function<String, Long> cached = salt -> {
			CompletionCreateParams.Builder b = greedy(prompt, 1);
			if (salt != null) {
				b.putAdditionalBodyProperty("cache_salt", com.openai.core.JsonValue.from(salt));
			}
			Completion c = client.completions().create(b.build());
			return c.usage().orElseThrow().promptTokensDetails().flatMap(d -> d.cachedTokens()).orElse(0L);
		};
		assertThat(cached.apply("tenant-a")).as("first under salt a").isZero();
		long hit = cached.apply("tenant-a");
		assertThat(hit).as("again under salt a").isGreaterThanOrEqualTo(32);
		assertThat(cached.apply("tenant-b")).as("under salt b").isZero();
		assertThat(cached.apply(null)).as("without a salt").isZero();
		assertThat(cached.apply(null)).as("again without a salt").isEqualTo(hit);
		assertThat(cached.apply("tenant-b")).as("again under salt b").isEqualTo(hit);

		for (String bad : new String[] { "\"\"", "5", "[\"a\"]", "\"" + "x".repeat(4097) + "\"" }) {
			HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
				.header("Content-Type", "application/json")
				.POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"x\", \"max_tokens\": 1, \"cache_salt\": " + bad + "}"))
				.build(), HttpResponse.BodyHandlers.ofString());
			assertThat(r.statusCode()).as(bad).isEqualTo(400);
			assertThat(r.body()).contains("\"param\":\"cache_salt\"").contains("non-empty string");
		}
		EngineProbes.checkInvariants(engine);
	}
}
