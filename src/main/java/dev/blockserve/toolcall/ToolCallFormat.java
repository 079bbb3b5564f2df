package dev.blockserve.toolcall;

import java.security.SecureRandom;

/**
 * How a model family writes tool calls in free text ({@code tool_choice: auto}), chosen from its chat
 * template as vLLM's parsers would be chosen by hand:
 * <ul>
 * <li>HERMES (Hermes, Qwen 2.5, Qwen 3): {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>},
 * one block per call, text around them;</li>
 * <li>LLAMA3_JSON (Llama 3.1-3.3): the whole answer is {@code {"name": ..., "parameters": {...}}},
 * optionally after {@code <|python_tag|>}, several calls separated by {@code ;};</li>
 * <li>MISTRAL: {@code [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]} or, from tokenizer v11 on,
 * {@code [TOOL_CALLS]name[ARGS]{...}}; the control tokens are special, so they may be missing from the
 * text, which then starts with the array (or the name).</li>
 * </ul>
 * A template that names none of them (plain ChatML) gets HERMES. Stateless.
 */
public enum ToolCallFormat {

	HERMES, LLAMA3_JSON, MISTRAL;

	private static final SecureRandom RANDOM = new SecureRandom();

	private static final String ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	public static ToolCallFormat detect(String template) {
		if (template == null) {
			return HERMES;
		}
		if (template.contains("[TOOL_CALLS]")) {
			return MISTRAL;
		}
		if (template.contains("<tool_call>")) {
			return HERMES;
		}
		if (template.contains("<|python_tag|>") || template.contains("<|start_header_id|>")) {
			return LLAMA3_JSON;
		}
		return HERMES;
	}

	/** A fresh call id: Mistral's templates insist on 9 letters or digits, the others take OpenAI's style. */
	public String newId() {
		StringBuilder sb = new StringBuilder(this == MISTRAL ? "" : "call_");
		int n = this == MISTRAL ? 9 : 24;
		for (int i = 0; i < n; i++) {
			sb.append(ALNUM.charAt(RANDOM.nextInt(ALNUM.length())));
		}
		return sb.toString();
	}
}
