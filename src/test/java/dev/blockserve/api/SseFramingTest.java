package dev.blockserve.api;

import java.nio.charset.StandardCharsets;
import java.util.List;

import dev.blockserve.engine.EngineException;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Flux;

import org.springframework.core.io.buffer.DataBuffer;
import org.springframework.core.io.buffer.DefaultDataBufferFactory;

import static org.assertj.core.api.Assertions.assertThat;

class SseFramingTest {

	static DataBuffer event(String json) {
		return DefaultDataBufferFactory.sharedInstance.wrap(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8));
	}

	static List<String> render(Flux<DataBuffer> f) {
		return f.map(b -> b.toString(StandardCharsets.UTF_8)).collectList().block();
	}

	/** A frame is exactly its head, {@code data: }, the JSON as Jackson writes it, and a blank line: no spare bytes. */
	@Test
	void framesHoldExactlyTheirEvent() {
		for (String text : List.of("", "Once upon a time", "caf\u00e9 \u6771\u4eac \ud83d\ude00 \"quoted\"\n", "x".repeat(5000))) {
			Dto.Completion c = new Dto.Completion("cmpl-1", "text_completion", 1L, "m",
					List.of(new Dto.CompletionChoice(0, text, null, null)), null);
			String json = Sse.JSON.writeValueAsString(c);
			DataBuffer plain = Sse.event(c);
			assertThat(plain.readableByteCount()).isEqualTo(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8).length);
			assertThat(plain.toString(StandardCharsets.UTF_8)).isEqualTo("data: " + json + "\n\n");
			assertThat(Sse.typedEvent("response.output_text.delta", c).toString(StandardCharsets.UTF_8))
				.isEqualTo("event: response.output_text.delta\ndata: " + json + "\n\n");
		}
		assertThat(Sse.event("[DONE]").toString(StandardCharsets.UTF_8)).isEqualTo("data: [DONE]\n\n");
	}

	@Test
	void aStreamEndsWithDone() {
		assertThat(render(Api.sseEvents(Flux.just(event("{\"a\":1}"))))).containsExactly("data: {\"a\":1}\n\n",
				"data: [DONE]\n\n");
	}

	@Test
	void aFailureAfterTheStreamStartedIsSentAsAnErrorEventThenDone() {
		Flux<DataBuffer> failing = Flux.concat(Flux.just(event("{\"a\":1}")),
				Flux.error(new EngineException("generation failed: device lost", new RuntimeException())));
		List<String> out = render(Api.sseEvents(failing));
		assertThat(out).hasSize(3);
		assertThat(out.get(0)).isEqualTo("data: {\"a\":1}\n\n");
		assertThat(out.get(1)).startsWith("data: {\"error\":{\"message\":\"generation failed: device lost\"")
			.contains("\"type\":\"server_error\"")
			.endsWith("}\n\n");
		assertThat(out.get(2)).isEqualTo("data: [DONE]\n\n");
	}
}
