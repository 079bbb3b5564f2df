package dev.blockserve.engine;

import dev.blockserve.model.TextTokenizer;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.params.ParameterizedTest;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Streaming detokenisation equals decoding the whole output, never emits half a character, and keeps
 * word spacing, with a byte-level BPE (tiny-random-llama) and a SentencePiece tokenizer with byte
 * fallback (stories260K).
 */
class IncrementalDetokenizerTest {

	static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> texts() {
		return java.util.stream.Stream.of(
				org.junit.jupiter.params.provider.Arguments.of("tiny-random-llama", "Hello wörld — naïve café ✓ 日本語 🙂 end"),
				org.junit.jupiter.params.provider.Arguments.of("stories260K", "Once upon a time, Lily saw a café. ✓ 日本 🙂!"),
				org.junit.jupiter.params.provider.Arguments.of("stories260K", "  two  spaces and\nnew lines\n"));
	}

	@ParameterizedTest
	@org.junit.jupiter.params.provider.MethodSource("texts")
	void deltasAddUpToTheWholeTextWithoutBrokenCharacters(String model, String text) {
		try (TextTokenizer t = TextTokenizer.load(SharedModels.dir(model))) {
			int[] prompt = t.encode("Prompt:", true);
			int[] out = t.encode(text, false);
			IncrementalDetokenizer d = new IncrementalDetokenizer(t, prompt, true);
			StringBuilder streamed = new StringBuilder();
			for (int id : out) {
				String delta = d.add(id);
				assertThat(delta).doesNotContain("\uFFFD");
				for (int i = 0; i < delta.length(); i++) {
					if (Character.isHighSurrogate(delta.charAt(i))) {
						assertThat(i + 1).as("surrogate pair split in " + delta).isLessThan(delta.length());
					}
				}
				streamed.append(delta);
			}
			streamed.append(d.flush());
			assertThat(streamed.toString()).isEqualTo(t.decodeContinuation(prompt, out));
		}
	}
}
