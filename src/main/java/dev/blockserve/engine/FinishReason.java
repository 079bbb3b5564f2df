package dev.blockserve.engine;

/** Why a sequence ended, with the name OpenAI's API and vLLM's metrics give it. Immutable. */
public enum FinishReason {

	/** EOS, a stop token or a stop string. */
	STOP("stop"),
	/** max_tokens or the context length. */
	LENGTH("length"),
	/** The client went away or the request was cancelled. */
	ABORT("abort");

	private final String openAi;

	FinishReason(String openAi) {
		this.openAi = openAi;
	}

	/** The value of OpenAI's {@code finish_reason} field. */
	public String openAi() {
		return openAi;
	}
}
