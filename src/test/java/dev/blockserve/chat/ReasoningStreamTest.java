package dev.blockserve.chat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import dev.blockserve.support.Property;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class ReasoningStreamTest {

	static final String QWEN3_PROMPT = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";

	/** Pushes the text in the given pieces and joins what comes out, finish included. */
	static String[] streamed(ReasoningStream s, List<String> pieces) {
		StringBuilder r = new StringBuilder();
		StringBuilder c = new StringBuilder();
		for (String p : pieces) {
			ReasoningStream.Split split = s.push(p);
			r.append(split.reasoning());
			c.append(split.content());
		}
		ReasoningStream.Split last = s.finish();
		return new String[] { r.append(last.reasoning()).toString(), c.append(last.content()).toString() };
	}

	static ReasoningStream forPrompt(String prompt) {
		return ReasoningStream.create(ReasoningStream.opens(prompt));
	}

	static String[] whole(String prompt, String text) {
		return streamed(forPrompt(prompt), List.of(text));
	}

	/** An independent statement of the rule, on the whole text at once. */
	static String[] reference(boolean openedByPrompt, String text) {
		String body;
		if (openedByPrompt) {
			body = text;
		}
		else {
			int i = 0;
			while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
				i++;
			}
			if (!text.startsWith("<think>", i)) {
				return new String[] { "", text };
			}
			body = text.substring(i + "<think>".length());
		}
		int close = body.indexOf("</think>");
		if (close < 0) {
			return new String[] { stripNewlines(body), "" };
		}
		String content = body.substring(close + "</think>".length()).replaceFirst("^\n+", "");
		return new String[] { stripNewlines(body.substring(0, close)), content };
	}

	static String stripNewlines(String s) {
		return s.replaceFirst("^\n+", "").replaceFirst("\n+$", "");
	}

	@Test
	void qwen3AnswerSplitsIntoReasoningAndContent() {
		assertThat(whole(QWEN3_PROMPT, "<think>\nThe user asks for 2+2.\n\nIt is 4.\n</think>\n\nThe answer is 4."))
			.containsExactly("The user asks for 2+2.\n\nIt is 4.", "The answer is 4.");
		// token by token, as a stream sends it
		assertThat(streamed(forPrompt(QWEN3_PROMPT),
				List.of("<", "think", ">\n", "It", " is", " 4", ".\n", "</", "think", ">\n\n", "Four", "."))).containsExactly("It is 4.",
						"Four.");
	}

	@Test
	void anAnswerWithoutABlockIsAllContent() {
		assertThat(whole(QWEN3_PROMPT, "Hello there")).containsExactly("", "Hello there");
		assertThat(whole(QWEN3_PROMPT, "  spaced")).containsExactly("", "  spaced");
		assertThat(whole(QWEN3_PROMPT, "<thinking>not a tag</thinking>")).containsExactly("", "<thinking>not a tag</thinking>");
		assertThat(whole(QWEN3_PROMPT, "<thi")).containsExactly("", "<thi");
		assertThat(whole(QWEN3_PROMPT, "")).containsExactly("", "");
		// enable_thinking=false: the template closed an empty block in the prompt
		assertThat(whole(QWEN3_PROMPT + "<think>\n\n</think>\n\n", "Four.")).containsExactly("", "Four.");
	}

	@Test
	void aPromptThatOpensTheBlockStartsInsideIt() {
		assertThat(whole("<｜Assistant｜><think>\n", "Let me see.\n</think>\n\nFour.")).containsExactly("Let me see.", "Four.");
		assertThat(ReasoningStream.opens("x<think>\n")).isTrue();
		assertThat(ReasoningStream.opens("x<think>\n\n</think>\n\n")).isFalse();
		assertThat(ReasoningStream.opens("user: what does <think> mean?\nassistant:")).isFalse();
		assertThat(ReasoningStream.closes("x<think>\n\n</think>\n\n")).isTrue();
		assertThat(ReasoningStream.closes("x<think>\n")).isFalse();
		// continue_final_message with an assistant prefix that is still reasoning
		assertThat(ReasoningStream.leavesOpen("<think>\nFirst, ")).isTrue();
		assertThat(ReasoningStream.leavesOpen("<think>a</think>b")).isFalse();
		assertThat(ReasoningStream.leavesOpen("plain")).isFalse();
	}

	@Test
	void reasoningCutShortStaysReasoningAndLaterTagsAreText() {
		assertThat(whole(QWEN3_PROMPT, "<think>\nhmm, so\n")).containsExactly("hmm, so", "");
		assertThat(whole(QWEN3_PROMPT, "<think>a</thi")).containsExactly("a</thi", "");
		assertThat(whole(QWEN3_PROMPT, "<think>a</think>b<think>c</think>")).containsExactly("a", "b<think>c</think>");
		assertThat(whole(QWEN3_PROMPT, " \n<think>x</think>\n\n\n")).containsExactly("x", "");
	}

	@Test
	void textThatMayBecomeATagIsHeldBackAndNothingElse() {
		ReasoningStream s = forPrompt(QWEN3_PROMPT);
		assertThat(s.push("<th")).isEqualTo(new ReasoningStream.Split("", ""));
		assertThat(s.push("ink>\nabc")).isEqualTo(new ReasoningStream.Split("abc", ""));
		assertThat(s.push("\n\n</th")).isEqualTo(new ReasoningStream.Split("", ""));
		assertThat(s.push("x")).isEqualTo(new ReasoningStream.Split("\n\n</thx", ""));
		assertThat(s.push("</think>\nA")).isEqualTo(new ReasoningStream.Split("", "A"));
		assertThat(s.push("\n\nB")).isEqualTo(new ReasoningStream.Split("", "\n\nB"));
	}

	static final String[] FRAGMENTS = { "<think>", "</think>", "<", "</", "<th", "think", "ink>", ">", "\n", "\n\n", " ", "a",
			"bc", "</thi", "nk>" };

	@Test
	void anyChunkingGivesTheWholeTextsSplitAndTheRule() {
		Property.forAll("reasoning split", 3000, 20261129L, (Random r) -> {
			List<String> ops = new ArrayList<>();
			ops.add(r.nextBoolean() ? "opened" : "start");
			int n = r.nextInt(14);
			for (int i = 0; i < n; i++) {
				ops.add(FRAGMENTS[r.nextInt(FRAGMENTS.length)]);
			}
			return ops;
		}, ops -> {
			String prompt = ops.get(0).equals("opened") ? "p<think>\n" : QWEN3_PROMPT;
			List<String> pieces = ops.subList(1, ops.size());
			String text = String.join("", pieces);
			String[] split = streamed(forPrompt(prompt), pieces);
			assertThat(split).as("streamed vs whole, text %s", text.replace("\n", "\\n")).containsExactly(whole(prompt, text));
			assertThat(split).as("vs the rule, text %s", text.replace("\n", "\\n"))
				.containsExactly(reference(ops.get(0).equals("opened"), text));
		});
	}

	@Test
	void templatesThatWriteReasoningAreRecognised() throws Exception {
		String qwen3 = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/qwen3.jinja"));
		assertThat(ReasoningStream.templateReasons(qwen3)).isTrue();
		for (String plain : new String[] { "qwen2.5", "llama3", "mistral", "smollm2" }) {
			String t = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/" + plain + ".jinja"));
			assertThat(ReasoningStream.templateReasons(t)).as(plain).isFalse();
		}
		assertThat(ReasoningStream.templateReasons(null)).isFalse();
	}
}
