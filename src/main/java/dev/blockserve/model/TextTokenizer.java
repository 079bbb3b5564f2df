package dev.blockserve.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

/**
 * The model's tokenizer from its {@code tokenizer.json}, through the Hugging Face tokenizers library
 * (DJL's binding). Two traps are closed here: DJL truncates at 512 tokens unless told not to, and on
 * machines with CUDA it tries to download a CUDA build of its native library unless it is offline and
 * pinned to its bundled CPU build.
 * Shared: request threads encode while the engine thread decodes (the Rust tokenizer behind it is Sync).
 */
public final class TextTokenizer implements AutoCloseable {

	static {
		if (System.getProperty("ai.djl.offline") == null) {
			System.setProperty("ai.djl.offline", "true");
		}
		if (System.getProperty("RUST_FLAVOR") == null && System.getenv("RUST_FLAVOR") == null) {
			System.setProperty("RUST_FLAVOR", "cpu");
		}
	}

	private final HuggingFaceTokenizer tokenizer;

	private final Path json;

	private volatile dev.blockserve.constraint.TokenVocabulary vocabulary;

	private TextTokenizer(HuggingFaceTokenizer tokenizer, Path json) {
		this.tokenizer = tokenizer;
		this.json = json;
	}

	/**
	 * Every token's bytes and their trie, for constrained decoding: built on first use (a request thread
	 * pays it once, about 0.1 s for a 49,152-token vocabulary), then shared.
	 * @param vocabSize the model's vocabulary (may exceed the tokenizer's)
	 */
	public dev.blockserve.constraint.TokenVocabulary vocabulary(int vocabSize) {
		var v = vocabulary;
		if (v == null) {
			synchronized (this) {
				v = vocabulary;
				if (v == null) {
					v = dev.blockserve.constraint.TokenVocabulary.fromTokenizerJson(Json.read(json), vocabSize);
					vocabulary = v;
				}
			}
		}
		return v;
	}

	public static TextTokenizer load(Path dir) {
		Path json = dir.resolve("tokenizer.json");
		if (!Files.isRegularFile(json)) {
			throw new ModelLoadException(json + ": file not found (the model needs a Hugging Face tokenizer.json)");
		}
		try {
			return new TextTokenizer(HuggingFaceTokenizer.newInstance(json,
					Map.of("truncation", "false", "padding", "false", "addSpecialTokens", "true")), json);
		}
		catch (IOException | RuntimeException e) {
			throw new ModelLoadException(json + ": cannot load tokenizer (" + e.getMessage() + ")", e);
		}
	}

	/** Token ids of {@code text}, with the special tokens the tokenizer adds (BOS) when asked. */
	public int[] encode(String text, boolean addSpecialTokens) {
		Encoding e = tokenizer.encode(text, addSpecialTokens, false);
		long[] ids = e.getIds();
		int[] out = new int[ids.length];
		for (int i = 0; i < ids.length; i++) {
			out[i] = (int) ids[i];
		}
		return out;
	}

	public String decode(int[] ids, boolean skipSpecialTokens) {
		long[] l = new long[ids.length];
		for (int i = 0; i < ids.length; i++) {
			l[i] = ids[i];
		}
		return tokenizer.decode(l, skipSpecialTokens);
	}

	/**
	 * The text that {@code generated} adds after {@code prompt}. Decoding the new ids alone would lose
	 * what depends on context (SentencePiece drops the leading space of a first piece), so the whole
	 * sequence is decoded and the prompt's own text removed from its front.
	 */
	public String decodeContinuation(int[] prompt, int[] generated) {
		int[] all = java.util.Arrays.copyOf(prompt, prompt.length + generated.length);
		System.arraycopy(generated, 0, all, prompt.length, generated.length);
		String full = decode(all, true);
		String head = decode(prompt, true);
		return full.startsWith(head) ? full.substring(head.length()) : decode(generated, true);
	}

	@Override
	public void close() {
		tokenizer.close();
	}
}
