package dev.blockserve.engine;

import java.util.Arrays;

import dev.blockserve.model.TextTokenizer;

/**
 * Turns a growing list of token ids into text deltas that are safe to stream. Each step decodes a short
 * window (from a few tokens back up to the newest) and emits only what the window adds beyond the text it
 * already produced, so SentencePiece's leading spaces and byte-level merges come out as they would from
 * decoding the whole sequence; while the window ends in an incomplete UTF-8 character (decoded as U+FFFD)
 * nothing is emitted. This is the scheme of Hugging Face's TextStreamer and vLLM's detokenizer.
 * One per sequence; owned by the engine thread.
 */
public final class IncrementalDetokenizer {

	private final TextTokenizer tokenizer;

	private final boolean skipSpecial;

	private int[] ids;

	private int len;

	private int prefixOffset;

	private int readOffset;

	// Decoded text of ids[prefixOffset, readOffset), valid while those offsets are unchanged: peek (once per
	// logprob alternative) and add decode it only once per window.
	private String prefixText;

	private int prefixFrom = -1;

	private int prefixTo = -1;

	public IncrementalDetokenizer(TextTokenizer tokenizer, int[] prompt, boolean skipSpecial) {
		this.tokenizer = tokenizer;
		this.skipSpecial = skipSpecial;
		this.ids = Arrays.copyOf(prompt, prompt.length + 32);
		this.len = prompt.length;
		// a few prompt tokens of context, so the first generated piece gets its leading space right
		this.prefixOffset = Math.max(0, prompt.length - 5);
		this.readOffset = prompt.length;
	}

	private String prefixText() {
		if (prefixFrom != prefixOffset || prefixTo != readOffset) {
			prefixText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecial);
			prefixFrom = prefixOffset;
			prefixTo = readOffset;
		}
		return prefixText;
	}

	/** Adds one generated token; returns the text it completes (possibly empty). */
	public String add(int token) {
		if (len == ids.length) {
			ids = Arrays.copyOf(ids, len * 2);
		}
		ids[len++] = token;
		String prefix = prefixText();
		String full = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, len), skipSpecial);
		if (full.length() > prefix.length() && !full.endsWith("\uFFFD") && full.startsWith(prefix)) {
			String delta = full.substring(prefix.length());
			prefixOffset = readOffset;
			readOffset = len;
			return delta;
		}
		return "";
	}

	/** A detokenizer with this one's tokenizer and settings and no tokens yet (for the prompt's own tokens). */
	IncrementalDetokenizer startingEmpty() {
		return new IncrementalDetokenizer(tokenizer, new int[0], skipSpecial);
	}

	/** The text {@link #add} would return for {@code token} now, without adding it. */
	public String peek(int token) {
		int[] window = Arrays.copyOfRange(ids, prefixOffset, len + 1);
		window[window.length - 1] = token;
		String prefix = prefixText();
		String full = tokenizer.decode(window, skipSpecial);
		return full.startsWith(prefix) ? full.substring(prefix.length()) : full;
	}

	/** Text held back at the end (an incomplete character when generation stops mid-character). */
	public String flush() {
		if (readOffset == len) {
			return "";
		}
		String prefix = prefixText();
		String full = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, len), skipSpecial);
		readOffset = len;
		prefixOffset = len;
		return full.startsWith(prefix) ? full.substring(prefix.length()) : "";
	}
}
