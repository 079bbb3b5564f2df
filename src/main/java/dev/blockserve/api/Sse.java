package dev.blockserve.api;

import java.nio.charset.StandardCharsets;

import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.core.io.buffer.DataBuffer;
import org.springframework.core.io.buffer.DefaultDataBufferFactory;
import org.springframework.http.MediaType;
import org.springframework.http.ReactiveHttpOutputMessage;
import org.springframework.web.reactive.function.BodyInserter;
import org.springframework.web.reactive.function.server.ServerResponse;

/**
 * Server-Sent Events as the OpenAI API frames them ({@code data: <json>} and a blank line), written with
 * a flush after every event so each reaches the client at once. Shared by the API and the admin stream.
 */
public final class Sse {

	/** The JSON mapper of the HTTP edge. */
	public static final JsonMapper JSON = JsonMapper.builder().build();

	private Sse() {
	}

	/** One event whose data is {@code o} as JSON, or {@code o} itself when it is a String. */
	public static DataBuffer event(Object o) {
		return frame("", o);
	}

	/** One event with its type on an {@code event:} line, as the Responses API frames its stream. */
	public static DataBuffer typedEvent(String type, Object o) {
		return frame("event: " + type + "\n", o);
	}

	private static DataBuffer frame(String head, Object o) {
		String data = o instanceof String s ? s : JSON.writeValueAsString(o);
		return DefaultDataBufferFactory.sharedInstance.wrap((head + "data: " + data + "\n\n").getBytes(StandardCharsets.UTF_8));
	}

	/** A text/event-stream response that flushes after each event. */
	public static Mono<ServerResponse> response(Flux<DataBuffer> events) {
		BodyInserter<Flux<DataBuffer>, ReactiveHttpOutputMessage> inserter = (out, ctx) -> out
			.writeAndFlushWith(events.map(Mono::just));
		return ServerResponse.ok()
			.contentType(MediaType.TEXT_EVENT_STREAM)
			.header("Cache-Control", "no-cache")
			.header("X-Accel-Buffering", "no")
			.body(inserter);
	}
}
