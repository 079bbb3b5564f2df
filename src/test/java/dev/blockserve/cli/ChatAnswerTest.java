package dev.blockserve.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

import dev.blockserve.chat.ReasoningStream;
import dev.blockserve.engine.FinishReason;
import dev.blockserve.engine.GenerationEvent;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code blockserve chat}'s answer display: a reasoning block apart from the answer, the history whole. */
class ChatAnswerTest {

	static String shown(ReasoningStream think, boolean ansi, String... pieces) {
		StringWriter screen = new StringWriter();
		ChatCommand.Answer a = new ChatCommand.Answer(new PrintWriter(screen), think, ansi);
		for (int i = 0; i < pieces.length; i++) {
			boolean last = i == pieces.length - 1;
			a.event(new GenerationEvent(0, pieces[i], new int[] { i }, null, last ? FinishReason.STOP : null, 3, i + 1, 0, null));
		}
		assertThat(a.text.toString()).as("the history keeps the whole text").isEqualTo(String.join("", pieces));
		return screen.toString();
	}

	@Test
	void aReasoningBlockIsShownApartFromTheAnswer() {
		String[] qwen3 = { "<think>", "\nHmm, two", " and two.\n", "</think>", "\n\n", "Four", "." };
		assertThat(shown(ReasoningStream.create(false), false, qwen3)).isEqualTo("thinking: Hmm, two and two.\nFour.");
		assertThat(shown(ReasoningStream.create(false), true, qwen3))
			.isEqualTo(ChatCommand.Answer.DIM + "Hmm, two and two." + ChatCommand.Answer.RESET + "\nFour.");
		// a block cut by max_tokens still ends its line
		assertThat(shown(ReasoningStream.create(true), false, "Let me", " think")).isEqualTo("thinking: Let me think\n");
	}

	@Test
	void withoutAReasoningTemplateTheTextIsShownAsItComes() {
		assertThat(shown(null, true, "<think>", "x", "</think>", "y")).isEqualTo("<think>x</think>y");
		assertThat(shown(ReasoningStream.create(false), true, "Just", " an answer")).isEqualTo("Just an answer");
	}
}
