package dev.blockserve.api;

import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/** The response bodies of the OpenAI API, field for field. */
public final class Dto {

	private Dto() {
	}

	/** One input's vector: a list of floats, or (encoding_format base64) its little-endian float32 bytes in base64. */
	public record Embedding(String object, Object embedding, int index) {
	}

	public record EmbeddingUsage(@JsonProperty("prompt_tokens") int promptTokens, @JsonProperty("total_tokens") int totalTokens) {
	}

	public record EmbeddingList(String object, List<Embedding> data, String model, EmbeddingUsage usage) {
	}

	public record Usage(@JsonProperty("prompt_tokens") int promptTokens,
			@JsonProperty("completion_tokens") int completionTokens, @JsonProperty("total_tokens") int totalTokens,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("prompt_tokens_details") Map<String, Integer> promptTokensDetails) {
	}

	public record CompletionLogprobs(List<String> tokens, @JsonProperty("token_logprobs") List<Float> tokenLogprobs,
			@JsonProperty("top_logprobs") List<Map<String, Float>> topLogprobs,
			@JsonProperty("text_offset") List<Integer> textOffset) {
	}

	public record CompletionChoice(int index, String text, CompletionLogprobs logprobs,
			@JsonProperty("finish_reason") String finishReason,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("prompt_logprobs") List<Map<String, PromptLogprob>> promptLogprobs) {

		public CompletionChoice(int index, String text, CompletionLogprobs logprobs, String finishReason) {
			this(index, text, logprobs, finishReason, null);
		}
	}

	/** vLLM's entry of prompt_logprobs, keyed by token id: the token's logprob, its rank and its text. */
	public record PromptLogprob(float logprob, int rank, @JsonProperty("decoded_token") String decodedToken) {
	}

	public record Completion(String id, String object, long created, String model, List<CompletionChoice> choices,
			@JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {
	}

	/**
	 * content is null (and written as null) when the answer is only tool calls; reasoning_content (vLLM's
	 * and DeepSeek's name) is the model's reasoning block, when it wrote one.
	 */
	public record ChatMessage(String role, @JsonInclude(JsonInclude.Include.ALWAYS) String content,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("reasoning_content") String reasoningContent,
			@JsonInclude(JsonInclude.Include.NON_EMPTY) @JsonProperty("tool_calls") List<ToolCall> toolCalls) {

		public ChatMessage(String role, String content) {
			this(role, content, null, null);
		}

		public ChatMessage(String role, String content, List<ToolCall> toolCalls) {
			this(role, content, null, toolCalls);
		}

		public ChatMessage withReasoning(String reasoning) {
			return new ChatMessage(role, content, reasoning, toolCalls);
		}
	}

	@JsonInclude(JsonInclude.Include.NON_NULL)
	public record FunctionCall(String name, String arguments) {
	}

	public record ToolCall(String id, String type, FunctionCall function) {
	}

	/** A tool call in a stream: the first delta of a call has id, type and name; later ones add arguments. */
	@JsonInclude(JsonInclude.Include.NON_NULL)
	public record ToolCallDelta(int index, String id, String type, FunctionCall function) {
	}

	public record TopLogprob(String token, float logprob, List<Integer> bytes) {
	}

	public record ChatTokenLogprob(String token, float logprob, List<Integer> bytes,
			@JsonProperty("top_logprobs") List<TopLogprob> topLogprobs) {
	}

	public record ChatLogprobs(List<ChatTokenLogprob> content) {
	}

	public record ChatChoice(int index, ChatMessage message, ChatLogprobs logprobs,
			@JsonProperty("finish_reason") String finishReason) {
	}

	public record ChatCompletion(String id, String object, long created, String model, List<ChatChoice> choices,
			Usage usage,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("prompt_logprobs") List<Map<String, PromptLogprob>> promptLogprobs) {
	}

	public record Delta(@JsonInclude(JsonInclude.Include.NON_NULL) String role,
			@JsonInclude(JsonInclude.Include.NON_NULL) String content,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("reasoning_content") String reasoningContent,
			@JsonInclude(JsonInclude.Include.NON_NULL) @JsonProperty("tool_calls") List<ToolCallDelta> toolCalls) {

		public Delta(String role, String content) {
			this(role, content, null, null);
		}

		public Delta(String role, String content, List<ToolCallDelta> toolCalls) {
			this(role, content, null, toolCalls);
		}

		static Delta reasoning(String text) {
			return new Delta(null, null, text, null);
		}
	}

	public record ChatChunkChoice(int index, Delta delta, ChatLogprobs logprobs,
			@JsonProperty("finish_reason") String finishReason) {
	}

	public record ChatChunk(String id, String object, long created, String model, List<ChatChunkChoice> choices,
			@JsonInclude(JsonInclude.Include.NON_NULL) Usage usage) {
	}

	public record Model(String id, String object, long created, @JsonProperty("owned_by") String ownedBy,
			@JsonProperty("max_model_len") int maxModelLen) {
	}

	public record ModelList(String object, List<Model> data) {
	}

	public record ErrorBody(String message, String type, String param, String code) {
	}

	public record ErrorEnvelope(ErrorBody error) {
	}
}
