package dev.blockserve.api;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
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
 * Server-Sent Events as the OpenAI API frames them ({@code data: <json>} and a blank line), each flushed as
 * soon as it is written so that it reaches the client at once. Shared by the API and the admin stream.
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

	/**
	 * The event's bytes in one array: Jackson writes the JSON straight after the head and {@code data: } into
	 * it, and the buffer wraps the array as filled. A token's event is written on the engine thread, so
	 * this is one array per token where the text path made three (the JSON string, the joined string, its
	 * bytes).
	 */
	private static DataBuffer frame(String head, Object o) {
		Frame f = new Frame(head);
		if (o instanceof String s) {
			f.writeBytes(s.getBytes(StandardCharsets.UTF_8));
		}
		else {
			JSON.writeValue(f, o);
		}
		f.writeBytes(END);
		return DefaultDataBufferFactory.sharedInstance.wrap(ByteBuffer.wrap(f.array(), 0, f.size()));
	}

	private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);

	private static final byte[] END = "\n\n".getBytes(StandardCharsets.US_ASCII);

	/** A byte array output stream that starts with the event's head and hands out its array unchanged. */
	private static final class Frame extends ByteArrayOutputStream {

		Frame(String head) {
			super(256);
			if (!head.isEmpty()) {
				writeBytes(head.getBytes(StandardCharsets.UTF_8));
			}
			writeBytes(DATA);
		}

		byte[] array() {
			return buf;
		}
	}

	/**
	 * A text/event-stream response whose events are flushed as soon as the writer has no more queued: each on
	 * its own while they trickle (a token at a time), a burst in one flush. Written with {@code writeWith}, one
	 * flat stream, not {@code writeAndFlushWith}'s stream of one-event streams: CI saw a stream stop there with
	 * every event the writer had asked for handed to it and nothing left in Netty (docs/benchmarks.md,
	 * eighteenth session). Where the exchange counts its stream's progress (the server's exchanges do), the
	 * events handed to the writer and the writer's demand are counted.
	 */
	public static Mono<ServerResponse> response(Flux<DataBuffer> events) {
		Flux<DataBuffer> counted = Flux.deferContextual(c -> {
			StreamProgress p = c.getOrDefault(StreamProgress.class, null);
			return p == null ? events
					: events.doOnRequest(p::asked).doOnNext(b -> p.handed++).doOnTerminate(() -> p.ended = true);
		});
		BodyInserter<Flux<DataBuffer>, ReactiveHttpOutputMessage> inserter = (out, ctx) -> out.writeWith(counted);
		return ServerResponse.ok()
			.contentType(MediaType.TEXT_EVENT_STREAM)
			.header("Cache-Control", "no-cache")
			.header("X-Accel-Buffering", "no")
			.body(inserter);
	}
}
