package dev.blockserve.api;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

import dev.blockserve.engine.Engine;
import dev.blockserve.engine.GenerationEvent;
import dev.blockserve.engine.RequestRejectedException;
import dev.blockserve.engine.SamplingParams;
import dev.blockserve.chat.ChatTemplate;
import dev.blockserve.chat.ReasoningStream;
import dev.blockserve.model.TextTokenizer;
import dev.blockserve.toolcall.ToolCallFormat;
import dev.blockserve.toolcall.ToolCallStream;
import org.reactivestreams.Publisher;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.core.io.buffer.DataBuffer;
import org.springframework.core.io.buffer.DefaultDataBufferFactory;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;

/**
 * The OpenAI-compatible endpoints: {@code /v1/completions}, {@code /v1/chat/completions},
 * {@code /v1/models}, and vLLM's {@code /tokenize} and {@code /detokenize}. Handlers never block: they
 * parse, validate, submit to the engine (a queue hand-off) and map its event stream to JSON or to
 * Server-Sent Events. A client that goes away cancels the stream, which aborts the request in the engine.
 */
public final class Api {

	static final JsonMapper JSON = Sse.JSON;

	private final Engine engine;

	private final TextTokenizer tokenizer;

	private final ChatTemplate template;

	private final String modelName;

	private final long createdAt = System.currentTimeMillis() / 1000;

	private final AdmissionControl admission;

	private final Constraints constraints = new Constraints();

	/** How this model family writes tool calls (from its chat template). */
	private final ToolCallFormat toolFormat;

	/** Whether chat answers are split into reasoning_content and content ({@link ReasoningStream}). */
	private final boolean reasoningParser;

	/** The token {@code <think>} is, when the vocabulary has it as one token (Qwen3, DeepSeek-R1); else -1. */
	private final int thinkToken;

	/**
	 * @param reasoningParser split {@code <think>} blocks into reasoning_content; null: when the chat
	 * template writes such blocks
	 */
	/** Why the server is not ready yet (its start-up warm-up runs), or null; /health says it. */
	private volatile String starting;

	public Api(Engine engine, ChatTemplate template, String modelName, AdmissionControl admission, Boolean reasoningParser) {
		this.engine = engine;
		this.reasoningParser = reasoningParser != null ? reasoningParser
				: ReasoningStream.templateReasons(template == null ? null : template.source());
		if (this.reasoningParser) {
			org.slf4j.LoggerFactory.getLogger(Api.class)
				.info("Chat answers' <think> blocks go to reasoning_content (blockserve.api.reasoning-parser; none turns it off)");
		}
		this.admission = admission;
		this.tokenizer = engine.runtime().tokenizer();
		int[] think = this.reasoningParser ? tokenizer.encode(ReasoningStream.OPEN, false) : new int[0];
		this.thinkToken = think.length == 1 && think[0] < engine.runtime().model().config().vocabSize() ? think[0] : -1;
		this.template = template;
		this.modelName = modelName;
		this.toolFormat = ToolCallFormat.detect(template == null ? null : template.source());
		// The vocabulary's bytes and trie (about a second for 49,152 tokens) are built in the background at
		// start, so that neither the first constrained request nor the engine thread waits for them.
		Thread warm = new Thread(this::vocabulary, "blockserve-vocabulary");
		warm.setDaemon(true);
		warm.start();
	}

	/** The token vocabulary for grammar masks (built once; a request thread waits here if it is not ready). */
	private void vocabulary() {
		try {
			tokenizer.vocabulary(engine.runtime().model().config().vocabSize());
		}
		catch (RuntimeException e) {
			// a tokenizer the grammar engine cannot read: constrained requests report it, free text is unaffected
		}
	}

	/** Makes sure the vocabulary exists before a constrained request reaches the engine thread. */
	private void needsVocabulary(SamplingParams params) {
		if (params.grammar() == null) {
			return;
		}
		try {
			tokenizer.vocabulary(engine.runtime().model().config().vocabSize());
		}
		catch (RuntimeException e) {
			throw ApiException.badRequest("structured output is not available for this model: " + e.getMessage(),
					"response_format");
		}
	}

	public String modelName() {
		return modelName;
	}

	// ---- request plumbing

	private static Mono<byte[]> body(ServerRequest req) {
		return req.bodyToMono(byte[].class)
			.switchIfEmpty(Mono.error(() -> ApiException.badRequest("the request body is empty", null)));
	}

	/** Parses a body as a JSON object (on the CPU-work pool: a large body is work). */
	private static JsonNode parse(byte[] bytes) {
		JsonNode n;
		try {
			n = JSON.readTree(bytes);
		}
		catch (RuntimeException e) {
			throw ApiException.badRequest("the request body is not valid JSON: " + firstLine(e.getMessage()), null);
		}
		if (n == null || !n.isObject()) {
			throw ApiException.badRequest("the request body must be a JSON object", null);
		}
		return n;
	}

	private static String firstLine(String s) {
		if (s == null) {
			return "";
		}
		int nl = s.indexOf('\n');
		return nl < 0 ? s : s.substring(0, nl);
	}

	private void checkModel(JsonNode body) {
		String m = RequestParser.model(body);
		if (m != null && !m.equals(modelName)) {
			throw new ApiException(HttpStatus.NOT_FOUND, "invalid_request_error",
					"The model `" + m + "` does not exist. This server serves `" + modelName + "`.", "model",
					"model_not_found");
		}
	}

	/** vLLM's "priority" field: lower runs first under blockserve.scheduler.policy=priority. */
	private static int priority(JsonNode body) {
		Integer p = RequestParser.optInt(body, "priority", -1_000_000, 1_000_000);
		return p == null ? 0 : p;
	}

	private Engine.Submission submit(int[] prompt, SamplingParams params, int priority) {
		return submit(prompt, params, priority, admission.requestTimeout());
	}

	/** Submits with a deadline {@code timeout} from now (null: none); rejections become 400s naming their field. */
	private Engine.Submission submit(int[] prompt, SamplingParams params, int priority, java.time.Duration timeout) {
		try {
			return engine.submit(prompt, params, priority, timeout);
		}
		catch (RequestRejectedException e) {
			boolean context = e.reason() == RequestRejectedException.Reason.CONTEXT_LENGTH_EXCEEDED;
			throw new ApiException(HttpStatus.BAD_REQUEST, "invalid_request_error", e.getMessage(), e.param(),
					context ? "context_length_exceeded" : null);
		}
	}

	/** Checks the request's size and its key's rate limits, then submits every prompt (all or none). */
	private List<Engine.Submission> submitAll(ServerRequest req, List<int[]> prompts, SamplingParams params, int priority) {
		long tokens = 0;
		for (int[] p : prompts) {
			int max = params.maxTokens() > 0 ? params.maxTokens() : Math.max(0, engine.maxModelLen() - p.length);
			tokens += (long) (p.length + max) * params.n();
		}
		admission.checkSize(prompts.size() * params.n(), tokens);
		admission.rateLimit(req, tokens);
		List<Engine.Submission> subs = new ArrayList<>();
		try {
			for (int[] p : prompts) {
				subs.add(submit(p, params, priority));
			}
		}
		catch (RuntimeException e) {
			for (Engine.Submission s : subs) {
				engine.abort(s.id());
			}
			throw e;
		}
		return subs;
	}

	private static String finishName(GenerationEvent e) {
		return e.finishReason() == null ? null : e.finishReason().openAi();
	}

	/** A response id: {@code prefix}, then random and time-derived hex (chat, completions and Responses ids). */
	static String id(String prefix) {
		return prefix + Long.toHexString(ThreadLocalRandom.current().nextLong()) + Long.toHexString(System.nanoTime());
	}

	private static Mono<ServerResponse> json(Object o) {
		return ServerResponse.ok().contentType(MediaType.APPLICATION_JSON).bodyValue(JSON.writeValueAsBytes(o));
	}

	private static DataBuffer sse(Object o) {
		return Sse.event(o);
	}

	/** The events of an SSE stream, then [DONE]; a failure after the stream started becomes an error event. */
	/**
	 * {@code params} with the request's bad_words as token sequences, as vLLM tokenizes them: each word as
	 * written (leading blanks dropped), and again after a space when that gives a different first token in as
	 * many tokens (the word inside a text, for tokenizers that mark a preceding space).
	 */
	private SamplingParams badWords(JsonNode body, SamplingParams params) {
		List<String> words = RequestParser.badWords(body);
		if (words.isEmpty()) {
			return params;
		}
		List<int[]> seqs = new ArrayList<>();
		for (String w : words) {
			int[] bare = tokenizer.encode(w.stripLeading(), false);
			if (bare.length > 0) {
				seqs.add(bare);
			}
			int[] spaced = tokenizer.encode(" " + w.stripLeading(), false);
			if (spaced.length > 0 && bare.length > 0 && spaced.length == bare.length && spaced[0] != bare[0]) {
				seqs.add(spaced);
			}
		}
		return params.toBuilder().badWords(seqs.toArray(new int[0][])).build();
	}

	static Flux<DataBuffer> sseEvents(Flux<DataBuffer> events) {
		return events.concatWith(Mono.fromSupplier(() -> sse("[DONE]"))).onErrorResume(e -> {
			ApiException api = ApiErrorHandler.toApi(e);
			return Flux.just(sse(new Dto.ErrorEnvelope(new Dto.ErrorBody(api.getMessage(), api.type(), api.param(),
					api.code()))), sse("[DONE]"));
		});
	}

	/** An SSE response that flushes each event (see {@link #sseEvents}). */
	private static Mono<ServerResponse> sseResponse(Flux<DataBuffer> events) {
		return Sse.response(sseEvents(events));
	}

	/** One choice being assembled from events. */
	private static final class ChoiceAcc {

		/** The legacy logprobs list starts with the prompt's tokens (echo with logprobs), at most this many alternatives each; -1: not. */
		final int echoTop;

		/** The prompt logprobs the first event carried; null when none were asked. */
		List<GenerationEvent.TokenLogprob> promptLogprobs;

		final StringBuilder text = new StringBuilder();

		final List<String> tokens = new ArrayList<>();

		final List<Float> tokenLogprobs = new ArrayList<>();

		final List<Map<String, Float>> top = new ArrayList<>();

		final List<Dto.ChatTokenLogprob> chatLogprobs = new ArrayList<>();

		final List<Integer> offsets = new ArrayList<>();

		String finish;

		int completionTokens;

		int promptTokens;

		int cachedTokens;

		/** vLLM's return_tokens_as_token_ids: logprob entries name tokens "token_id:ID", not by their text. */
		final boolean idsAsTokens;

		ChoiceAcc(int echoTop, boolean idsAsTokens) {
			this.echoTop = echoTop;
			this.idsAsTokens = idsAsTokens;
		}

		/** How a logprob entry names a token: its text, or "token_id:ID" (texts of partial UTF-8 are ambiguous). */
		String name(String text, int id) {
			return idsAsTokens ? "token_id:" + id : text;
		}

		void add(GenerationEvent e, int textBase) {
			if (e.promptLogprobs() != null) {
				promptLogprobs = e.promptLogprobs();
			}
			if (e.promptLogprobs() != null && echoTop >= 0) { // the prompt's tokens come first, from offset 0
				int offset = 0;
				for (GenerationEvent.TokenLogprob lp : e.promptLogprobs()) {
					offsets.add(offset);
					tokens.add(name(lp.text(), lp.token()));
					offset += lp.text().length();
					boolean first = Float.isNaN(lp.logprob()); // nothing before it: OpenAI's null
					tokenLogprobs.add(first ? null : lp.logprob());
					top.add(first ? null : topMap(lp, echoTop));
				}
			}
			if (e.logprobs() != null) {
				for (GenerationEvent.TokenLogprob lp : e.logprobs()) {
					String tok = name(lp.text(), lp.token());
					offsets.add(textBase + text.length());
					tokens.add(tok);
					tokenLogprobs.add(lp.logprob());
					List<Dto.TopLogprob> chatTop = new ArrayList<>();
					for (int i = 0; i < lp.topTokens().length; i++) {
						String tt = name(lp.topTexts()[i], lp.topTokens()[i]);
						chatTop.add(new Dto.TopLogprob(tt, lp.topLogprobs()[i], bytes(tt)));
					}
					top.add(topMap(lp, Integer.MAX_VALUE));
					chatLogprobs.add(new Dto.ChatTokenLogprob(tok, lp.logprob(), bytes(tok), chatTop));
				}
			}
			text.append(e.text());
			if (e.finishReason() != null) {
				finish = e.finishReason().openAi();
				completionTokens = e.completionTokens();
				promptTokens = e.promptTokens();
				cachedTokens = e.cachedPromptTokens();
			}
		}

		/** OpenAI's legacy top_logprobs entry: token name to logprob of the first {@code k} alternatives, the first of equal names kept. */
		Map<String, Float> topMap(GenerationEvent.TokenLogprob lp, int k) {
			Map<String, Float> t = new LinkedHashMap<>();
			for (int i = 0; i < Math.min(k, lp.topTokens().length); i++) {
				t.putIfAbsent(name(lp.topTexts()[i], lp.topTokens()[i]), lp.topLogprobs()[i]);
			}
			return t;
		}
	}

	/**
	 * vLLM's prompt_logprobs: null for the first prompt token, then per token a map from token id to its
	 * logprob, rank and text: the prompt token first, then the top {@code k} alternatives.
	 */
	private static List<Map<String, Dto.PromptLogprob>> vllmPromptLogprobs(List<GenerationEvent.TokenLogprob> lps, int k) {
		if (lps == null) {
			return null; // the choice ended before its first token
		}
		List<Map<String, Dto.PromptLogprob>> out = new ArrayList<>(lps.size());
		for (int j = 0; j < lps.size(); j++) {
			GenerationEvent.TokenLogprob lp = lps.get(j);
			if (j == 0) {
				out.add(null);
				continue;
			}
			Map<String, Dto.PromptLogprob> m = new LinkedHashMap<>();
			m.put(String.valueOf(lp.token()), new Dto.PromptLogprob(lp.logprob(), lp.rank(), lp.text()));
			for (int i = 0; i < Math.min(k, lp.topTokens().length); i++) {
				m.putIfAbsent(String.valueOf(lp.topTokens()[i]),
						new Dto.PromptLogprob(lp.topLogprobs()[i], i + 1, lp.topTexts()[i]));
			}
			out.add(m);
		}
		return out;
	}

	/** vLLM's prompt_logprobs field (0 to 20 alternatives); it has no streamed form, so a stream asking for it is a 400. */
	private static Integer promptLogprobsField(JsonNode body, boolean stream) {
		Integer k = RequestParser.optInt(body, "prompt_logprobs", 0, 20);
		if (k != null && stream) {
			throw ApiException.badRequest("'prompt_logprobs' is not available with streaming", "prompt_logprobs");
		}
		return k;
	}

	private static List<Integer> bytes(String s) {
		byte[] b = s.getBytes(StandardCharsets.UTF_8);
		List<Integer> out = new ArrayList<>(b.length);
		for (byte x : b) {
			out.add(x & 0xff);
		}
		return out;
	}

	private static Dto.Usage usage(int prompt, int completion, int cached) {
		return new Dto.Usage(prompt, completion, prompt + completion,
				cached > 0 ? Map.of("cached_tokens", cached) : null);
	}

	/** {@code events}, counted in the exchange's {@link StreamProgress} where it has one (the stop's log). */
	static <T> Flux<T> counted(Flux<T> events) {
		return Flux.deferContextual(c -> {
			StreamProgress p = c.getOrDefault(StreamProgress.class, null);
			return p == null ? events : events.doOnNext(e -> p.read++);
		});
	}

	/** An event with its choice index across all prompts of a request. */
	private record IndexedEvent(int index, GenerationEvent event) {
	}

	/** Events of all prompts, each tagged with its choice index (prompt index x n + sibling index). */
	private static Flux<IndexedEvent> indexed(List<Engine.Submission> subs, int n) {
		List<Flux<IndexedEvent>> fs = new ArrayList<>();
		for (int p = 0; p < subs.size(); p++) {
			final int base = p * n;
			fs.add(subs.get(p).events().map(e -> new IndexedEvent(base + e.index(), e)));
		}
		return counted(Flux.merge(fs));
	}

	/**
	 * A streamed completion: each engine event becomes one {@code text_completion} chunk (none for an empty
	 * token that ends nothing), then the usage chunk when asked. Built per request; its state (what each
	 * choice has sent) is touched by one signal at a time.
	 *
	 * <p>Each event maps to at most one chunk, so this is a {@code mapNotNull}, never a {@code concatMap} of
	 * {@code Flux.just}: the engine thread emits while Netty's event loop requests, and Reactor's concatMap
	 * with scalar inners drops or repeats an item when a request races an emission (reactor-core issue
	 * 4406; {@code StreamIntegrityTest} reproduces it).
	 */
	static final class CompletionStream {

		private final String id;

		private final long created;

		private final String model;

		private final int n;

		private final List<String> echoTexts;

		private final int echoTop;

		private final boolean idsAsTokens;

		private final List<int[]> continuousUsagePrompts;

		private final int usagePromptTokens;

		/**
		 * @param echoTexts each prompt's text to put before its choices' first text, or null without echo
		 * @param continuousUsagePrompts the prompts when every chunk carries the usage so far, else null
		 * @param usagePromptTokens the prompt tokens of the final usage chunk, or -1 for none
		 */
		CompletionStream(String id, long created, String model, int n, List<String> echoTexts, int echoTop,
				boolean idsAsTokens, List<int[]> continuousUsagePrompts, int usagePromptTokens) {
			this.id = id;
			this.created = created;
			this.model = model;
			this.n = n;
			this.echoTexts = echoTexts;
			this.echoTop = echoTop;
			this.idsAsTokens = idsAsTokens;
			this.continuousUsagePrompts = continuousUsagePrompts;
			this.usagePromptTokens = usagePromptTokens;
		}

		Flux<DataBuffer> chunks(List<Engine.Submission> subs) {
			int[] completion = new int[1];
			boolean[] echoed = new boolean[subs.size() * n];
			int[] sent = new int[subs.size() * n]; // characters of each choice's text sent so far: text_offset
			Flux<DataBuffer> chunks = indexed(subs, n).mapNotNull(ie -> {
				int index = ie.index();
				GenerationEvent e = ie.event();
				String text = e.text();
				if (echoTexts != null && !echoed[index]) {
					echoed[index] = true;
					text = echoTexts.get(index / n) + text;
				}
				if (e.finished()) {
					completion[0] += e.completionTokens();
				}
				if (text.isEmpty() && !e.finished() && e.logprobs() == null) {
					return null;
				}
				// the accumulator only for an event with logprobs: a plain token's chunk needs its text alone
				Dto.CompletionLogprobs lp = null;
				if (e.logprobs() != null || e.promptLogprobs() != null) {
					ChoiceAcc acc = new ChoiceAcc(echoTop, idsAsTokens);
					acc.add(e, sent[index] + text.length() - e.text().length());
					lp = new Dto.CompletionLogprobs(acc.tokens, acc.tokenLogprobs, acc.top, acc.offsets);
				}
				sent[index] += text.length();
				return sse(new Dto.Completion(id, "text_completion", created, model,
						List.of(new Dto.CompletionChoice(index, text, lp, finishName(e))), continuousUsagePrompts == null
								? null : usage(continuousUsagePrompts.get(index / n).length, e.completionTokens(), 0)));
			});
			if (usagePromptTokens >= 0) {
				chunks = chunks.concatWith(Mono.fromSupplier(() -> sse(new Dto.Completion(id, "text_completion", created,
						model, List.of(), usage(usagePromptTokens, completion[0], 0)))));
			}
			return chunks;
		}
	}

	// ---- /v1/completions

	public Mono<ServerResponse> completions(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			JsonNode body = parse(bytes);
			checkModel(body);
			List<Object> raw = RequestParser.prompts(body);
			Integer maxTokens = RequestParser.optInt(body, "max_tokens", 1, Integer.MAX_VALUE);
			Integer logprobs = RequestParser.optInt(body, "logprobs", 0, 20);
			boolean echo = RequestParser.optBool(body, "echo", false);
			boolean idsAsTokens = RequestParser.optBool(body, "return_tokens_as_token_ids", false);
			boolean stream = RequestParser.optBool(body, "stream", false);
			boolean includeUsage = stream && RequestParser.optBool(body.path("stream_options"), "include_usage", false);
			boolean continuousUsage = includeUsage && continuousUsage(body);
			JsonNode suffix = body.get("suffix");
			if (suffix != null && !suffix.isNull() && !(suffix.isString() && suffix.asString().isEmpty())) {
				throw ApiException.badRequest("'suffix' (insertion) is not supported", "suffix");
			}
			SamplingParams params = badWords(body, RequestParser.sampling(body, maxTokens == null ? 16 : maxTokens,
					logprobs == null ? -1 : logprobs, constraints.output(body)));
			Integer promptLogprobs = promptLogprobsField(body, stream);
			int echoTop = echo && logprobs != null ? logprobs : -1; // OpenAI's legacy echo: the prompt's tokens get logprobs too
			int promptTop = Math.max(echoTop, promptLogprobs == null ? -1 : promptLogprobs);
			if (promptTop >= 0) {
				params = params.toBuilder().promptLogprobs(promptTop).build();
			}
			Integer bestOf = RequestParser.optInt(body, "best_of", 1, 128);
			if (bestOf != null && bestOf != params.n()) {
				// vLLM's V1 engine dropped best_of as well; answering n choices while the client asked for the
				// best of more would be a silent change of meaning
				throw ApiException.badRequest("'best_of' other than n is not supported (got best_of " + bestOf + ", n "
						+ params.n() + ")", "best_of");
			}
			admission.checkSize(raw.size() * params.n(), 0); // before tokenising 20,000 prompts
			List<int[]> prompts = new ArrayList<>();
			List<String> promptTexts = new ArrayList<>();
			int keep = truncation(body);
			for (Object p : raw) {
				int[] ids = p instanceof String s ? tokenizer.encode(s, true) : (int[]) p;
				int[] kept = keepLast(ids, keep);
				prompts.add(kept);
				// echo repeats the prompt as served: the text of the kept tokens when it was cut
				promptTexts.add(p instanceof String s && kept == ids ? s : echo ? tokenizer.decode(kept, true) : "");
			}
			int n = params.n();
			String id = id("cmpl-");
			long created = System.currentTimeMillis() / 1000;
			needsVocabulary(params);
			List<Engine.Submission> subs = submitAll(req, prompts, params, priority(body));
			int promptTokens = prompts.stream().mapToInt(a -> a.length).sum();
			if (stream) {
				return sseResponse(new CompletionStream(id, created, modelName, n, echo ? promptTexts : null, echoTop,
						idsAsTokens, continuousUsage ? prompts : null, includeUsage ? promptTokens : -1).chunks(subs));
			}
			Map<Integer, ChoiceAcc> accs = new HashMap<>();
			return indexed(subs, n).doOnNext(ie -> {
				int index = ie.index();
				ChoiceAcc acc = accs.computeIfAbsent(index, k -> new ChoiceAcc(echoTop, idsAsTokens));
				acc.add(ie.event(), echo ? promptTexts.get(index / n).length() : 0);
			}).then(Mono.defer(() -> {
				List<Dto.CompletionChoice> choices = new ArrayList<>();
				int completion = 0;
				int cached = 0;
				for (int i = 0; i < subs.size() * n; i++) {
					ChoiceAcc acc = accs.get(i);
					completion += acc.completionTokens;
					cached += i % n == 0 ? acc.cachedTokens : 0;
					String text = (echo ? promptTexts.get(i / n) : "") + acc.text;
					Dto.CompletionLogprobs lp = logprobs == null ? null
							: new Dto.CompletionLogprobs(acc.tokens, acc.tokenLogprobs, acc.top, acc.offsets);
					choices.add(new Dto.CompletionChoice(i, text, lp, acc.finish, promptLogprobs == null ? null
							: vllmPromptLogprobs(acc.promptLogprobs, promptLogprobs)));
				}
				return json(new Dto.Completion(id, "text_completion", created, modelName, choices,
						usage(promptTokens, completion, cached)));
			}));
		}));
	}

	/**
	 * vLLM's {@code stream_options.continuous_usage_stats}: with include_usage, every chunk carries the usage
	 * so far (the prompt's tokens and its choice's completion tokens), not only the last one.
	 */
	private static boolean continuousUsage(JsonNode body) {
		return RequestParser.optBool(body.path("stream_options"), "continuous_usage_stats", false);
	}

	/**
	 * vLLM's {@code truncate_prompt_tokens}: k keeps a prompt's last k tokens (left truncation), -1 the last
	 * max_model_len; 0 (no limit) when absent.
	 */
	private int truncation(JsonNode body) {
		Integer k = RequestParser.optInt(body, "truncate_prompt_tokens", -1, Integer.MAX_VALUE);
		if (k != null && k == 0) {
			throw ApiException.badRequest("'truncate_prompt_tokens' must be at least 1, or -1 for the model's "
					+ "context length, got 0", "truncate_prompt_tokens");
		}
		return k == null ? 0 : k == -1 ? engine.maxModelLen() : k;
	}

	/** The last {@code keep} ids (the same array when it is no longer, or keep is 0). */
	static int[] keepLast(int[] ids, int keep) {
		return keep <= 0 || ids.length <= keep ? ids : java.util.Arrays.copyOfRange(ids, ids.length - keep, ids.length);
	}

	// ---- /v1/chat/completions

	/**
	 * A chat request's prompt, whether it ends inside a reasoning block that the answer continues, and
	 * whether it ends with a closed one (the answer is not to reason).
	 */
	private record ChatPrompt(int[] ids, boolean opensReasoning, boolean closesReasoning) {
	}

	private ChatPrompt chatPrompt(JsonNode body) {
		if (template == null) {
			throw ApiException.badRequest("The model `" + modelName + "` has no chat template (tokenizer_config.json "
					+ "has no chat_template); use /v1/completions with a prompt instead", "messages");
		}
		List<Map<String, Object>> messages = RequestParser.messages(body);
		@SuppressWarnings("unchecked")
		List<Object> tools = body.has("tools") && body.get("tools").isArray() ? JSON.convertValue(body.get("tools"), List.class)
				: null;
		boolean addGenerationPrompt = RequestParser.optBool(body, "add_generation_prompt", true);
		// vLLM's continue_final_message: the model continues the last message (an assistant's prefix, say)
		boolean continueFinal = RequestParser.optBool(body, "continue_final_message", false);
		if (continueFinal && addGenerationPrompt) {
			throw ApiException.badRequest("'continue_final_message' and 'add_generation_prompt' cannot both be true "
					+ "(send add_generation_prompt: false to continue the final message)", "continue_final_message");
		}
		String rendered;
		boolean opensReasoning;
		try {
			rendered = template.render(messages, tools, addGenerationPrompt, RequestParser.chatTemplateKwargs(body));
			opensReasoning = ReasoningStream.opens(rendered);
			if (continueFinal) {
				String last = (String) messages.get(messages.size() - 1).get("content");
				rendered = ChatTemplate.openFinalMessage(rendered, last);
				opensReasoning = ReasoningStream.opens(rendered) || ReasoningStream.leavesOpen(last);
			}
		}
		catch (ChatTemplate.TemplateException e) {
			throw ApiException.badRequest(e.getMessage(), "messages");
		}
		return new ChatPrompt(tokenizer.encode(rendered, false), opensReasoning, ReasoningStream.closes(rendered));
	}

	public Mono<ServerResponse> chat(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			ChatRun run = startChat(req, parse(bytes));
			return run.stream ? sseResponse(run.chunks().map(Api::sse)) : run.completion().flatMap(Api::json);
		}));
	}

	/**
	 * OpenAI's Responses API, translated to a chat request and back ({@link Responses}). A failure after the
	 * stream started is an {@code error} event, as OpenAI sends it.
	 */
	public Mono<ServerResponse> responses(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			Responses.Request r = Responses.request(parse(bytes));
			ChatRun run = startChat(req, r.chat());
			String id = id("resp_");
			long createdAt = run.created;
			if (run.stream) {
				Flux<DataBuffer> events = Responses.events(r, id, createdAt, modelName, run.chunks());
				return Sse.response(events);
			}
			return run.completion().flatMap(c -> json(Responses.response(r, id, createdAt, modelName, c)));
		}));
	}

	/**
	 * Checks a chat request, renders its prompt and submits it; what comes back streams its chunks or
	 * gathers its completion (one of the two, once). Shared by chat completions and the Responses API, which
	 * translates its requests into chat requests. On a request thread.
	 */
	ChatRun startChat(ServerRequest req, JsonNode body) {
		checkModel(body);
		Constraints.Tools tools = constraints.tools(body, toolFormat);
		var grammar = constraints.output(body);
		if (tools != null && tools.mode() != Constraints.Tools.Mode.AUTO) {
			if (grammar != null) {
				throw ApiException.badRequest("'tool_choice' required or a named function cannot be combined with "
						+ "'response_format' or guided decoding: the call's arguments already follow their schema", "tool_choice");
			}
			grammar = constraints.toolGrammar(tools);
		}
		else if (tools != null && grammar != null) {
			tools = null; // the output is shaped by response_format: there are no calls to find in it
		}
		ChatPrompt chatPrompt = chatPrompt(body);
		int[] prompt = keepLast(chatPrompt.ids(), truncation(body));
		// vLLM's include_reasoning: false drops the reasoning and keeps the answer
		boolean includeReasoning = RequestParser.optBool(body, "include_reasoning", true);
		boolean idsAsTokens = RequestParser.optBool(body, "return_tokens_as_token_ids", false);
		Integer maxTokens = RequestParser.optInt(body, "max_completion_tokens", 1, Integer.MAX_VALUE);
		if (maxTokens == null) {
			maxTokens = RequestParser.optInt(body, "max_tokens", 1, Integer.MAX_VALUE);
		}
		boolean logprobs = RequestParser.optBool(body, "logprobs", false);
		Integer top = RequestParser.optInt(body, "top_logprobs", 0, 20);
		if (top != null && !logprobs) {
			throw ApiException.badRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
		}
		boolean stream = RequestParser.optBool(body, "stream", false);
		boolean includeUsage = stream && RequestParser.optBool(body.path("stream_options"), "include_usage", false);
		boolean continuousUsage = includeUsage && continuousUsage(body);
		SamplingParams params = badWords(body, RequestParser.sampling(body, maxTokens == null ? 0 : maxTokens,
				logprobs ? (top == null ? 0 : top) : -1, grammar));
		Integer promptLogprobs = promptLogprobsField(body, stream);
		if (promptLogprobs != null) {
			params = params.toBuilder().promptLogprobs(promptLogprobs).build();
		}
		if (reasoningParser && grammar != null) {
			// as vLLM's structured outputs behind a reasoning parser: the model may reason first, and the
			// grammar holds from the token after </think>; not after a prompt that closed the block
			int open = chatPrompt.closesReasoning() ? -1 : thinkToken;
			params = params.toBuilder()
				.reasoning(new SamplingParams.Reasoning(chatPrompt.opensReasoning(), open, ReasoningStream.CLOSE))
				.build();
		}
		String id = id("chatcmpl-");
		long created = System.currentTimeMillis() / 1000;
		needsVocabulary(params);
		Engine.Submission sub = submitAll(req, List.of(prompt), params, priority(body)).get(0);
		int n = params.n();
		ToolCallStream[] calls = new ToolCallStream[n];
		for (int i = 0; i < n && tools != null; i++) {
			calls[i] = tools.stream();
		}
		ReasoningStream[] thinks = new ReasoningStream[n];
		for (int i = 0; i < n && reasoningParser; i++) {
			thinks[i] = ReasoningStream.create(chatPrompt.opensReasoning());
		}
		return new ChatRun(modelName, id, created, n, sub, prompt.length, thinks, calls, includeReasoning, idsAsTokens, stream,
				includeUsage, continuousUsage, logprobs, promptLogprobs);
	}

	/** One submitted chat request and how its output is to be shaped. */
	static final class ChatRun {

		private final String modelName;

		final String id;

		final long created;

		final int n;

		private final Engine.Submission sub;

		final int promptTokens;

		private final ReasoningStream[] thinks;

		private final ToolCallStream[] calls;

		private final boolean includeReasoning;

		private final boolean idsAsTokens;

		final boolean stream;

		private final boolean includeUsage;

		private final boolean continuousUsage;

		private final boolean logprobs;

		private final Integer promptLogprobs;

		ChatRun(String modelName, String id, long created, int n, Engine.Submission sub, int promptTokens, ReasoningStream[] thinks,
				ToolCallStream[] calls, boolean includeReasoning, boolean idsAsTokens, boolean stream, boolean includeUsage,
				boolean continuousUsage, boolean logprobs, Integer promptLogprobs) {
			this.modelName = modelName;
			this.id = id;
			this.created = created;
			this.n = n;
			this.sub = sub;
			this.promptTokens = promptTokens;
			this.thinks = thinks;
			this.calls = calls;
			this.includeReasoning = includeReasoning;
			this.idsAsTokens = idsAsTokens;
			this.stream = stream;
			this.includeUsage = includeUsage;
			this.continuousUsage = continuousUsage;
			this.logprobs = logprobs;
			this.promptLogprobs = promptLogprobs;
		}

		/** The stream's chunks: each choice's role, its deltas, and the usage when asked. */
		Flux<Dto.ChatChunk> chunks() {
			Flux<Dto.ChatChunk> roles = Flux.range(0, n)
				.map(i -> new Dto.ChatChunk(id, "chat.completion.chunk", created, modelName,
						List.of(new Dto.ChatChunkChoice(i, new Dto.Delta("assistant", ""), null, null)), null));
			int[] completion = new int[1];
			// concatMapIterable, not a concatMap of inner Fluxes: no subscription per token (see CompletionStream)
			Flux<Dto.ChatChunk> deltas = counted(sub.events()).concatMapIterable(e -> {
				if (e.finished()) {
					completion[0] += e.completionTokens();
				}
				List<Dto.ChatChunkChoice> out = chunkChoices(e, thinks[e.index()], includeReasoning, calls[e.index()],
						idsAsTokens);
				List<Dto.ChatChunk> chunks = new ArrayList<>(out.size());
				Dto.Usage soFar = continuousUsage ? usage(promptTokens, e.completionTokens(), 0) : null;
				for (Dto.ChatChunkChoice c : out) {
					chunks.add(new Dto.ChatChunk(id, "chat.completion.chunk", created, modelName, List.of(c), soFar));
				}
				return chunks;
			});
			Flux<Dto.ChatChunk> chunks = roles.concatWith(deltas);
			if (includeUsage) {
				chunks = chunks.concatWith(Mono.fromSupplier(() -> new Dto.ChatChunk(id, "chat.completion.chunk", created,
						modelName, List.of(), usage(promptTokens, completion[0], 0))));
			}
			return chunks;
		}

		/** The whole completion once every choice finished. */
		Mono<Dto.ChatCompletion> completion() {
			Map<Integer, ChoiceAcc> accs = new HashMap<>();
			return sub.events()
				.doOnNext(e -> accs.computeIfAbsent(e.index(), k -> new ChoiceAcc(-1, idsAsTokens)).add(e, 0))
				.then(Mono.defer(() -> {
					List<Dto.ChatChoice> choices = new ArrayList<>();
					int completion = 0;
					int cached = 0;
					for (int i = 0; i < n; i++) {
						ChoiceAcc acc = accs.get(i);
						completion += acc.completionTokens;
						cached = acc.cachedTokens;
						String text = acc.text.toString();
						String reasoning = null;
						if (thinks[i] != null) {
							ReasoningStream.Split head = thinks[i].push(text);
							ReasoningStream.Split tail = thinks[i].finish();
							text = head.content() + tail.content();
							reasoning = head.reasoning() + tail.reasoning();
							reasoning = includeReasoning && !reasoning.isEmpty() ? reasoning : null;
						}
						Dto.ChatMessage message = new Dto.ChatMessage("assistant", text);
						String finish = acc.finish;
						if (calls[i] != null) {
							List<ToolCallStream.Piece> pieces = new ArrayList<>(calls[i].push(text));
							pieces.addAll(calls[i].finish());
							message = message(pieces);
							finish = toolFinish(finish, calls[i]);
						}
						message = message.withReasoning(reasoning);
						choices.add(new Dto.ChatChoice(i, message, logprobs ? new Dto.ChatLogprobs(acc.chatLogprobs) : null,
								finish));
					}
					return Mono.just(new Dto.ChatCompletion(id, "chat.completion", created, modelName, choices,
							usage(promptTokens, completion, cached),
							promptLogprobs == null ? null : vllmPromptLogprobs(accs.get(0).promptLogprobs, promptLogprobs)));
				}));
		}
	}

	/** A finished choice that made calls ends with "tool_calls" (a cut one keeps "length"). */
	private static String toolFinish(String finish, ToolCallStream calls) {
		return calls.calls() > 0 && "stop".equals(finish) ? "tool_calls" : finish;
	}

	/** The assistant message of a whole answer split into content and calls (content null when only calls). */
	private static Dto.ChatMessage message(List<ToolCallStream.Piece> pieces) {
		StringBuilder content = new StringBuilder();
		List<Dto.ToolCall> toolCalls = new ArrayList<>();
		List<StringBuilder> args = new ArrayList<>();
		for (ToolCallStream.Piece p : pieces) {
			if (p instanceof ToolCallStream.Content c) {
				content.append(c.text());
			}
			else if (p instanceof ToolCallStream.CallStart c) {
				toolCalls.add(new Dto.ToolCall(c.id(), "function", new Dto.FunctionCall(c.name(), null)));
				args.add(new StringBuilder(c.arguments()));
			}
			else if (p instanceof ToolCallStream.Arguments a) {
				args.get(a.index()).append(a.delta());
			}
		}
		for (int i = 0; i < toolCalls.size(); i++) {
			Dto.ToolCall t = toolCalls.get(i);
			toolCalls.set(i, new Dto.ToolCall(t.id(), t.type(), new Dto.FunctionCall(t.function().name(), args.get(i).toString())));
		}
		String text = toolCalls.isEmpty() ? content.toString() : content.toString().strip();
		return new Dto.ChatMessage("assistant", text.isEmpty() && !toolCalls.isEmpty() ? null : text,
				toolCalls.isEmpty() ? null : toolCalls);
	}

	/**
	 * The stream chunks of one event: its reasoning (when the answer is split), then its text, or with tools
	 * the content and call deltas it completes. The event's logprobs ride on the first chunk.
	 */
	private static List<Dto.ChatChunkChoice> chunkChoices(GenerationEvent e, ReasoningStream think, boolean includeReasoning,
			ToolCallStream calls, boolean idsAsTokens) {
		ChoiceAcc acc = new ChoiceAcc(-1, idsAsTokens);
		acc.add(e, 0);
		Dto.ChatLogprobs lp = e.logprobs() == null ? null : new Dto.ChatLogprobs(acc.chatLogprobs);
		List<Dto.ChatChunkChoice> out = new ArrayList<>();
		String text = e.text();
		if (think != null) {
			ReasoningStream.Split split = think.push(text);
			String reasoning = split.reasoning();
			text = split.content();
			if (e.finished()) {
				ReasoningStream.Split rest = think.finish();
				reasoning += rest.reasoning();
				text += rest.content();
			}
			if (includeReasoning && !reasoning.isEmpty()) {
				out.add(new Dto.ChatChunkChoice(e.index(), Dto.Delta.reasoning(reasoning), lp, null));
				lp = null;
			}
		}
		if (calls == null) {
			if (text.isEmpty() && !e.finished() && lp == null) {
				return out;
			}
			Dto.Delta delta = e.finished() && text.isEmpty() ? new Dto.Delta(null, null) : new Dto.Delta(null, text);
			out.add(new Dto.ChatChunkChoice(e.index(), delta, lp, finishName(e)));
			return out;
		}
		List<ToolCallStream.Piece> pieces = new ArrayList<>(calls.push(text));
		if (e.finished()) {
			pieces.addAll(calls.finish());
		}
		for (ToolCallStream.Piece p : pieces) {
			Dto.Delta d;
			if (p instanceof ToolCallStream.Content c) {
				d = new Dto.Delta(null, c.text());
			}
			else if (p instanceof ToolCallStream.CallStart c) {
				d = new Dto.Delta(null, null, List.of(new Dto.ToolCallDelta(c.index(), c.id(), "function",
						new Dto.FunctionCall(c.name(), c.arguments()))));
			}
			else {
				ToolCallStream.Arguments a = (ToolCallStream.Arguments) p;
				d = new Dto.Delta(null, null, List.of(new Dto.ToolCallDelta(a.index(), null, null,
						new Dto.FunctionCall(null, a.delta()))));
			}
			out.add(new Dto.ChatChunkChoice(e.index(), d, out.isEmpty() ? lp : null, null));
		}
		if (out.isEmpty() && lp != null && !e.finished()) {
			out.add(new Dto.ChatChunkChoice(e.index(), new Dto.Delta(null, null), lp, null));
		}
		if (e.finished()) {
			out.add(new Dto.ChatChunkChoice(e.index(), new Dto.Delta(null, null), out.isEmpty() ? lp : null,
					toolFinish(finishName(e), calls)));
		}
		return out;
	}

	// ---- the rest

	public Mono<ServerResponse> models(ServerRequest req) {
		return json(new Dto.ModelList("list", List.of(servedModel())));
	}

	private Dto.Model servedModel() {
		return new Dto.Model(modelName, "model", createdAt, "blockserve", engine.maxModelLen());
	}

	/** {@code GET /v1/models/{id}}: the served model, or a 404 in the envelope naming what is served. */
	public Mono<ServerResponse> model(ServerRequest req) {
		String id = req.pathVariable("id");
		if (!id.equals(modelName)) {
			throw new ApiException(HttpStatus.NOT_FOUND, "invalid_request_error",
					"The model `" + id + "` does not exist. This server serves `" + modelName + "`.", "model",
					"model_not_found");
		}
		return json(servedModel());
	}

	// ---- /v1/embeddings

	/**
	 * OpenAI's embeddings: each input's final hidden state at its last token, L2-normalised (last-token
	 * pooling, how Qwen3-Embedding, gte-Qwen2 and e5-mistral pool); {@code dimensions} keeps the first k
	 * values and normalises again (Matryoshka truncation); {@code encoding_format} float or base64.
	 */
	public Mono<ServerResponse> embeddings(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			JsonNode body = parse(bytes);
			checkModel(body);
			List<Object> raw = RequestParser.prompts(body, "input");
			JsonNode formatNode = body.get("encoding_format");
			String format = formatNode == null || formatNode.isNull() ? "float" : formatNode.isString() ? formatNode.asString() : "";
			if (!format.equals("float") && !format.equals("base64")) {
				throw ApiException.badRequest("'encoding_format' must be \"float\" or \"base64\"", "encoding_format");
			}
			int hidden = engine.runtime().model().config().hiddenSize();
			Integer dimensions = RequestParser.optInt(body, "dimensions", 1, hidden);
			if (raw.size() > MAX_EMBEDDING_INPUTS) { // before tokenising them
				throw ApiException.badRequest("'input' holds " + raw.size() + " items; at most " + MAX_EMBEDDING_INPUTS
						+ " are embedded per request (as OpenAI's API)", "input");
			}
			int keep = truncation(body);
			List<int[]> prompts = new ArrayList<>();
			for (Object p : raw) {
				if (p instanceof String s && s.isEmpty()) {
					throw ApiException.badRequest("'input' must not contain an empty string", "input");
				}
				prompts.add(keepLast(p instanceof String s ? tokenizer.encode(s, true) : (int[]) p, keep));
			}
			SamplingParams params = SamplingParams.builder().maxTokens(1).temperature(0).embed(true)
				.cacheSalt(RequestParser.cacheSalt(body)).build();
			int promptTokens = 0;
			for (int[] p : prompts) {
				promptTokens += p.length;
				try {
					engine.validate(p, params); // every input before any is computed
				}
				catch (RequestRejectedException e) {
					boolean context = e.reason() == RequestRejectedException.Reason.CONTEXT_LENGTH_EXCEEDED;
					throw new ApiException(HttpStatus.BAD_REQUEST, "invalid_request_error", e.getMessage(), "input",
							context ? "context_length_exceeded" : null);
				}
			}
			admission.checkInputTokens(promptTokens);
			admission.rateLimit(req, promptTokens);
			int priority = priority(body);
			float[][] vectors = new float[prompts.size()][];
			// Up to EMBEDDING_WAVE inputs in the engine at once, the next submitted as one ends: a batch of
			// 2,048 (what LangChain4j sends) neither fills the waiting queue nor starves other requests. The
			// request's deadline holds for all of them: a later input gets what is left of it.
			java.time.Duration timeout = admission.requestTimeout();
			long deadline = timeout == null ? 0 : System.nanoTime() + timeout.toNanos();
			Flux<IndexedEvent> events = Flux.range(0, prompts.size())
				.flatMap(i -> Flux.defer(() -> submit(prompts.get(i), params, priority,
						timeout == null ? null : java.time.Duration.ofNanos(Math.max(1, deadline - System.nanoTime()))).events())
					.map(e -> new IndexedEvent(i, e)), EMBEDDING_WAVE);
			int usageTokens = promptTokens;
			return events.doOnNext(e -> {
				if (e.event().embedding() != null) {
					vectors[e.index()] = e.event().embedding();
				}
			}).then(Mono.fromSupplier(() -> {
				List<Dto.Embedding> data = new ArrayList<>(vectors.length);
				for (int i = 0; i < vectors.length; i++) {
					if (vectors[i] == null) {
						throw new IllegalStateException("input " + i + " ended without an embedding");
					}
					float[] v = dimensions == null ? vectors[i] : truncated(vectors[i], dimensions);
					data.add(new Dto.Embedding("embedding", format.equals("base64") ? base64(v) : v, i));
				}
				return new Dto.EmbeddingList("list", data, modelName, new Dto.EmbeddingUsage(usageTokens, usageTokens));
			})).flatMap(Api::json);
		}));
	}

	/** OpenAI's limit on the inputs of one embeddings request (LangChain4j batches up to it). */
	static final int MAX_EMBEDDING_INPUTS = 2048;

	/** Inputs of one embeddings request in the engine at once. */
	static final int EMBEDDING_WAVE = 64;

	/** The first {@code k} values, normalised again to unit length. */
	static float[] truncated(float[] v, int k) {
		float[] out = java.util.Arrays.copyOf(v, k);
		dev.blockserve.backend.HostMath.normalizeL2(out, k); // finite: the engine checked the whole vector
		return out;
	}

	/** OpenAI's base64 encoding: the float32 values' little-endian bytes. */
	static String base64(float[] v) {
		java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(v.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
		b.asFloatBuffer().put(v);
		return java.util.Base64.getEncoder().encodeToString(b.array());
	}

	/** {@code GET /version}, as vLLM answers it. */
	public Mono<ServerResponse> version(ServerRequest req) {
		return json(Map.of("version", Version.VERSION));
	}

	public Mono<ServerResponse> tokenize(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			JsonNode body = parse(bytes);
			checkModel(body);
			int[] ids;
			if (body.has("messages")) {
				ids = chatPrompt(body).ids();
			}
			else {
				JsonNode p = body.get("prompt");
				if (p == null || !p.isString()) {
					throw ApiException.badRequest("'prompt' (a string) or 'messages' is required", "prompt");
				}
				ids = tokenizer.encode(p.asString(), RequestParser.optBool(body, "add_special_tokens", true));
			}
			Map<String, Object> out = new LinkedHashMap<>();
			out.put("count", ids.length);
			out.put("max_model_len", engine.maxModelLen());
			out.put("tokens", ids);
			return json(out);
		}));
	}

	public Mono<ServerResponse> detokenize(ServerRequest req) {
		return body(req).flatMap(bytes -> admission.offload(() -> {
			JsonNode body = parse(bytes);
			checkModel(body);
			JsonNode t = body.get("tokens");
			if (t == null || !t.isArray()) {
				throw ApiException.badRequest("'tokens' must be an array of token ids", "tokens");
			}
			int vocab = engine.runtime().model().config().vocabSize();
			int[] ids = new int[t.size()];
			for (int i = 0; i < ids.length; i++) {
				JsonNode id = t.get(i);
				if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0 || id.asInt() >= vocab) {
					throw ApiException.badRequest("'tokens' must hold token ids in [0, " + vocab + ")", "tokens");
				}
				ids[i] = t.get(i).asInt();
			}
			return json(Map.of("prompt", tokenizer.decode(ids, false)));
		}));
	}

	/** vLLM's /health: 200 while the engine serves, 503 with the reason when it is down. */
	/** Whether the model has a chat template (chat requests are served). */
	public boolean hasChatTemplate() {
		return template != null;
	}

	/** Makes /health answer 503 "starting" with {@code reason} (null: serving). Any thread. */
	public void starting(String reason) {
		starting = reason;
	}

	public Mono<ServerResponse> health(ServerRequest req) {
		String pending = starting;
		if (pending != null) {
			return ServerResponse.status(HttpStatus.SERVICE_UNAVAILABLE).contentType(MediaType.APPLICATION_JSON)
				.bodyValue(JSON.writeValueAsBytes(Map.of("status", "starting", "reason", pending)));
		}
		String down = engine.downReason();
		if (down != null) {
			return ServerResponse.status(HttpStatus.SERVICE_UNAVAILABLE).contentType(MediaType.APPLICATION_JSON)
				.bodyValue(JSON.writeValueAsBytes(Map.of("status", "down", "reason", down)));
		}
		return ServerResponse.ok().contentType(MediaType.APPLICATION_JSON).bodyValue("{\"status\":\"ok\"}");
	}

	static Publisher<DataBuffer> bytes(byte[] b) {
		return Mono.just(org.springframework.core.io.buffer.DefaultDataBufferFactory.sharedInstance.wrap(b));
	}
}
