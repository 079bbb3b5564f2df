package dev.blockserve.constraint;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import dev.blockserve.model.Json;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

import static org.assertj.core.api.Assertions.assertThat;

/** Token bytes from real tokenizer files, and the trie holding each token exactly once at its bytes. */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class TokenVocabularyTest {

	@Test
	void byteLevelBpe() {
		var json = Json.read(SharedModels.dir("tiny-random-llama").resolve("tokenizer.json"));
		TokenVocabulary v = TokenVocabulary.fromTokenizerJson(json, 290);
		int space = json.path("model").path("vocab").path("\u0120").asInt(); // GPT-2's "Ġ" is the space byte
		assertThat(v.bytes(space)).containsExactly(' ');
		int newline = json.path("model").path("vocab").path("\u010a").asInt(); // "Ċ" is '\n'
		assertThat(v.bytes(newline)).containsExactly('\n');
		assertThat(v.bytes(287)).as("<|endoftext|> is special").isNull();
		assertThat(v.bytes(289)).as("<|im_end|> is special").isNull();
		for (int b = 0; b < 256; b++) {
			final int x = b;
			assertThat(java.util.stream.IntStream.range(0, 287).anyMatch(t -> Arrays.equals(v.bytes(t), new byte[] { (byte) x })))
				.as("byte %d has a token", b).isTrue();
		}
		assertTrieHoldsEveryToken(v);
	}

	@Test
	void sentencePieceWithByteFallback() {
		var json = Json.read(SharedModels.dir("stories260K").resolve("tokenizer.json"));
		TokenVocabulary v = TokenVocabulary.fromTokenizerJson(json, 512);
		var vocab = json.path("model").path("vocab");
		assertThat(v.bytes(vocab.path("<0x0A>").asInt())).containsExactly('\n');
		String piece = null;
		for (String k : vocab.propertyNames()) {
			if (k.startsWith("\u2581") && k.length() > 2) {
				piece = k;
				break;
			}
		}
		assertThat(new String(v.bytes(vocab.path(piece).asInt()), StandardCharsets.UTF_8)).isEqualTo(" " + piece.substring(1));
		assertThat(v.bytes(1)).as("<s>").isNull();
		assertTrieHoldsEveryToken(v);
	}

	/** Walks the preorder trie, rebuilding each node's bytes: every usable token sits once, at its own bytes. */
	static void assertTrieHoldsEveryToken(TokenVocabulary v) {
		int[] seen = new int[v.size()];
		byte[] path = new byte[v.maxDepth + 1];
		for (int i = 0; i < v.depth.length; i++) {
			int d = v.depth[i];
			path[d - 1] = v.edge[i];
			assertThat(v.subtreeEnd[i]).isGreaterThan(i);
			for (int k = v.tokenStart[i]; k < v.tokenStart[i + 1]; k++) {
				int t = v.tokenIds[k];
				seen[t]++;
				assertThat(v.bytes(t)).isEqualTo(Arrays.copyOf(path, d));
			}
		}
		for (int t = 0; t < v.size(); t++) {
			byte[] b = v.bytes(t);
			assertThat(seen[t]).as("token %d", t).isEqualTo(b == null || b.length == 0 ? 0 : 1);
		}
	}
}
