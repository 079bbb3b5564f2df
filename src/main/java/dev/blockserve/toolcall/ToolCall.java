package dev.blockserve.toolcall;

/**
 * One function call the model made: an id, the function's name and its arguments as a JSON text
 * (OpenAI's {@code function.arguments}). Immutable.
 */
public record ToolCall(String id, String name, String arguments) {
}
