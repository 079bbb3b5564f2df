package dev.blockserve.chat;

/**
 * Splits one chat choice's generated text into its reasoning (between {@code <think>} and
 * {@code </think>}, as Qwen3, QwQ, DeepSeek-R1 and SmolLM3 write it) and its answer, as the text arrives,
 * so that streaming (each split becomes a delta) and whole responses (the splits joined) give the same
 * result. vLLM's {@code --reasoning-parser qwen3 / deepseek_r1} and llama.cpp's {@code --reasoning-format}
 * do the same and answer with {@code reasoning_content}.
 * <p>
 * The answer starts inside the reasoning when the rendered prompt already ends with {@code <think>}
 * (DeepSeek-R1's templates and the thinking-only Qwen3 checkpoints open the block themselves); otherwise
 * reasoning is only an opening {@code <think>} at the very start of the output (after blanks). Newlines
 * around the reasoning and before the answer are dropped, as these templates drop them when they render the
 * turn back into a prompt ({@code reasoning_content.strip('\n')}, {@code content.lstrip('\n')}). A
 * reasoning cut short by {@code max_tokens} stays reasoning, with an empty answer; a second
 * {@code <think>} inside the answer is answer text. Text that may still become a tag is held back until it
 * is clear. One per choice; used by one thread at a time.
 */
public final class ReasoningStream {

	public static final String OPEN = "<think>";

	public static final String CLOSE = "</think>";

	/** What a piece of text completed: reasoning and answer text, each possibly empty. */
	public record Split(String reasoning, String content) {

		static final Split NONE = new Split("", "");
	}

	private enum State {
		/** Nothing but blanks yet: an opening tag may still come. */
		START,
		/** Inside the block: {@code trim} while only newlines have come after {@code <think>}. */
		REASONING,
		/** After the block, or an answer without one: {@code trim} while only newlines came after it. */
		CONTENT
	}

	private final StringBuilder pending = new StringBuilder();

	private State state;

	private boolean trim;

	private ReasoningStream(State state) {
		this.state = state;
		this.trim = state == State.REASONING;
	}

	/** For an answer that starts inside a block the prompt opened, or that may open one itself. */
	public static ReasoningStream create(boolean insideBlock) {
		return new ReasoningStream(insideBlock ? State.REASONING : State.START);
	}

	/** Whether a rendered prompt ends by opening a reasoning block, for the answer to continue. */
	public static boolean opens(String renderedPrompt) {
		return renderedPrompt.stripTrailing().endsWith(OPEN);
	}

	/**
	 * Whether a rendered prompt ends with a closed block (Qwen3's enable_thinking=false writes an empty one):
	 * the answer is not to reason.
	 */
	public static boolean closes(String renderedPrompt) {
		return renderedPrompt.stripTrailing().endsWith(CLOSE);
	}

	/** Whether a message's text (an assistant's prefix that the answer continues) leaves a block open. */
	public static boolean leavesOpen(String text) {
		return text != null && text.lastIndexOf(OPEN) > text.lastIndexOf(CLOSE);
	}

	/** Whether the chat template writes reasoning blocks, so answers are worth splitting. */
	public static boolean templateReasons(String chatTemplate) {
		return chatTemplate != null && chatTemplate.contains(OPEN) && chatTemplate.contains(CLOSE);
	}

	/** The reasoning and answer text that {@code delta} completes. */
	public Split push(String delta) {
		pending.append(delta);
		StringBuilder reasoning = null;
		StringBuilder content = null;
		while (true) {
			switch (state) {
				case START -> {
					int first = firstNonBlank(pending);
					if (startsWith(pending, first, OPEN)) {
						pending.delete(0, first + OPEN.length());
						state = State.REASONING;
						trim = true;
						continue;
					}
					if (isPrefixOfTag(pending, first, OPEN)) {
						return split(reasoning, content); // blanks, or the start of the tag: wait
					}
					state = State.CONTENT;
					continue;
				}
				case REASONING -> {
					if (trim && !dropLeadingNewlines()) {
						return split(reasoning, content);
					}
					int close = pending.indexOf(CLOSE);
					if (close >= 0) {
						int end = close;
						while (end > 0 && pending.charAt(end - 1) == '\n') {
							end--;
						}
						reasoning = append(reasoning, pending, end);
						pending.delete(0, close + CLOSE.length());
						state = State.CONTENT;
						trim = true;
						continue;
					}
					// hold back trailing newlines and the start of a closing tag: both may belong to it
					int keep = heldTail(pending);
					reasoning = append(reasoning, pending, pending.length() - keep);
					pending.delete(0, pending.length() - keep);
					return split(reasoning, content);
				}
				default -> {
					if (trim && !dropLeadingNewlines()) {
						return split(reasoning, content);
					}
					content = append(content, pending, pending.length());
					pending.setLength(0);
					return split(reasoning, content);
				}
			}
		}
	}

	/** What is left once the text has ended: a held-back partial tag is text after all. */
	public Split finish() {
		String rest = pending.toString();
		pending.setLength(0);
		return switch (state) {
			case START -> new Split("", rest);
			case REASONING -> new Split(stripTrailingNewlines(rest), "");
			default -> Split.NONE; // only newlines were left after the block
		};
	}

	private static String stripTrailingNewlines(String s) {
		int end = s.length();
		while (end > 0 && s.charAt(end - 1) == '\n') {
			end--;
		}
		return s.substring(0, end);
	}

	/** Drops newlines at the start of the pending text; true once something else follows them. */
	private boolean dropLeadingNewlines() {
		int n = 0;
		while (n < pending.length() && pending.charAt(n) == '\n') {
			n++;
		}
		pending.delete(0, n);
		if (pending.isEmpty()) {
			return false;
		}
		trim = false;
		return true;
	}

	/** The length of the tail that may still be newlines before {@code </think>} or its start. */
	private static int heldTail(CharSequence s) {
		int n = s.length();
		int tag = 0;
		for (int k = Math.min(CLOSE.length() - 1, n); k > 0; k--) {
			if (startsWith(s, n - k, CLOSE.substring(0, k))) {
				tag = k;
				break;
			}
		}
		int start = n - tag;
		while (start > 0 && s.charAt(start - 1) == '\n') {
			start--;
		}
		return n - start;
	}

	private static int firstNonBlank(CharSequence s) {
		int i = 0;
		while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
			i++;
		}
		return i;
	}

	private static boolean startsWith(CharSequence s, int from, String tag) {
		if (s.length() - from < tag.length()) {
			return false;
		}
		for (int i = 0; i < tag.length(); i++) {
			if (s.charAt(from + i) != tag.charAt(i)) {
				return false;
			}
		}
		return true;
	}

	/** Whether the text from {@code from} on is a (possibly empty) proper start of {@code tag}. */
	private static boolean isPrefixOfTag(CharSequence s, int from, String tag) {
		int len = s.length() - from;
		return len < tag.length() && startsWith(tag, 0, s.subSequence(from, s.length()).toString());
	}

	private static StringBuilder append(StringBuilder to, CharSequence from, int end) {
		if (end <= 0) {
			return to;
		}
		StringBuilder b = to == null ? new StringBuilder() : to;
		return b.append(from, 0, end);
	}

	private static Split split(StringBuilder reasoning, StringBuilder content) {
		if (reasoning == null && content == null) {
			return Split.NONE;
		}
		return new Split(reasoning == null ? "" : reasoning.toString(), content == null ? "" : content.toString());
	}
}
