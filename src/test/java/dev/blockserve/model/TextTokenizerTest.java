package dev.blockserve.model;

import java.nio.file.Path;

import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TextTokenizerTest {

	@Test
	void encodesGoldenPromptsAsTheReferenceDid() {
		for (String model : new String[] { "stories260K", "tiny-random-llama" }) {
			try (TextTokenizer t = TextTokenizer.load(SharedModels.dir(model))) {
				for (GoldenCase c : SharedModels.golden(model)) {
					if (c.promptText() != null) {
						assertThat(t.encode(c.promptText(), true)).as(model + ": " + c.promptText())
							.containsExactly(c.promptIds());
					}
				}
			}
		}
	}

	@Test
	void decodesGoldenCompletions() {
		try (TextTokenizer t = TextTokenizer.load(SharedModels.dir("stories260K"))) {
			for (GoldenCase c : SharedModels.golden("stories260K")) {
				int[] out = c.greedyIds();
				// The golden completion text excludes a final EOS token.
				int n = out.length > 0 && (out[out.length - 1] == 1 || out[out.length - 1] == 2) ? out.length - 1 : out.length;
				assertThat(t.decodeContinuation(c.promptIds(), java.util.Arrays.copyOf(out, n))).isEqualTo(c.completionText());
			}
		}
	}

	@Test
	void doesNotTruncateLongPrompts() {
		try (TextTokenizer t = TextTokenizer.load(SharedModels.dir("stories260K"))) {
			String text = "Once upon a time there was a little dog. ".repeat(200);
			int[] ids = t.encode(text, true);
			assertThat(ids.length).isGreaterThan(1500);
			assertThat(t.decode(ids, true)).isEqualTo(text);
		}
	}

	@Test
	void missingTokenizerFile(@TempDir Path dir) {
		assertThatThrownBy(() -> TextTokenizer.load(dir)).isInstanceOf(ModelLoadException.class)
			.hasMessageContaining("tokenizer.json");
	}
}
