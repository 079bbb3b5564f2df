package dev.blockserve.api;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import io.netty.buffer.ByteBufHolder;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.ReferenceCountUtil;

/**
 * Sits right after Netty's HTTP codec on every connection and guards what Spring never sees:
 * <ul>
 * <li>a request head (request line and headers) must arrive within {@code headerTimeout} of the
 * connection opening or of the previous response ending; otherwise the connection gets a 408 and is
 * closed, so clients that never finish their headers cannot hold connections open;</li>
 * <li>a head the codec could not decode (a request line over the URI limit, headers over their limit,
 * garbage) is answered here in OpenAI's error envelope (414, 431, 400) and the connection closed.</li>
 * </ul>
 * Bodies are bounded by Reactor Netty's request and read timeouts (configured beside this handler).
 * One instance per connection, run on that connection's event loop: no synchronisation needed.
 */
public final class HttpEdgeHandler extends ChannelDuplexHandler {

	/**
	 * Lingering close: when the server closes a connection whose client may still be sending (a body over
	 * the limit, a head too large or too slow), closing at once would reset the connection, and the reset
	 * can destroy the error response before the client reads it. So the output side is shut first and
	 * input read and dropped until the client closes, for at most this long or {@link #LINGER_BYTES}.
	 */
	private static final long LINGER_MILLIS = 2000;

	private static final long LINGER_BYTES = 16L << 20;

	private final long headerTimeoutMillis;

	private ScheduledFuture<?> headDeadline;

	private boolean lingering;

	private long drained;

	public HttpEdgeHandler(long headerTimeoutMillis) {
		this.headerTimeoutMillis = headerTimeoutMillis;
	}

	@Override
	public void handlerAdded(ChannelHandlerContext ctx) {
		if (ctx.channel().isActive()) {
			arm(ctx);
		}
	}

	@Override
	public void channelActive(ChannelHandlerContext ctx) throws Exception {
		arm(ctx);
		super.channelActive(ctx);
	}

	@Override
	public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
		if (lingering) {
			if (msg instanceof ByteBufHolder h) {
				drained += h.content().readableBytes();
			}
			ReferenceCountUtil.release(msg);
			if (drained > LINGER_BYTES) {
				ctx.close();
			}
			return;
		}
		if (msg instanceof HttpRequest req) {
			disarm();
			if (req.decoderResult().isFailure()) {
				ReferenceCountUtil.release(msg);
				Throwable cause = req.decoderResult().cause();
				if (cause instanceof TooLongHttpLineException) {
					reject(ctx, HttpResponseStatus.REQUEST_URI_TOO_LONG, "the request line is too long (URI limit: server.netty.max-initial-line-length)");
				}
				else if (cause instanceof TooLongHttpHeaderException || cause instanceof TooLongFrameException) {
					reject(ctx, HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
							"the request headers are too large (limit: server.max-http-request-header-size)");
				}
				else {
					reject(ctx, HttpResponseStatus.BAD_REQUEST, "the request is not valid HTTP: " + cause.getMessage());
				}
				return;
			}
		}
		super.channelRead(ctx, msg);
	}

	@Override
	public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
		boolean last = msg instanceof LastHttpContent;
		super.write(ctx, msg, promise);
		if (last) {
			arm(ctx); // the response is done: the next request's head has its own deadline
		}
	}

	/** Delays a close until the client has stopped sending (see {@link #LINGER_MILLIS}). */
	@Override
	public void close(ChannelHandlerContext ctx, ChannelPromise promise) throws Exception {
		if (lingering || !(ctx.channel() instanceof SocketChannel ch) || !ch.isActive() || ch.isInputShutdown()) {
			super.close(ctx, promise);
			return;
		}
		lingering = true;
		disarm();
		ch.config().setAutoRead(true);
		ctx.flush();
		ch.shutdownOutput().addListener(f -> {
			ctx.executor().schedule(() -> {
				ctx.close(promise);
			}, LINGER_MILLIS, TimeUnit.MILLISECONDS);
			ctx.read();
		});
	}

	@Override
	public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
		if (lingering && evt instanceof ChannelInputShutdownEvent) {
			ctx.close(); // the client finished sending: the lingering close can end
			return;
		}
		super.userEventTriggered(ctx, evt);
	}

	@Override
	public void channelInactive(ChannelHandlerContext ctx) throws Exception {
		disarm();
		super.channelInactive(ctx);
	}

	private void arm(ChannelHandlerContext ctx) {
		disarm();
		headDeadline = ctx.executor().schedule(() -> {
			if (ctx.channel().isActive()) {
				reject(ctx, HttpResponseStatus.REQUEST_TIMEOUT, "the request headers did not arrive within "
						+ headerTimeoutMillis + " ms (blockserve.api.http.header-timeout)");
			}
		}, headerTimeoutMillis, TimeUnit.MILLISECONDS);
	}

	private void disarm() {
		if (headDeadline != null) {
			headDeadline.cancel(false);
			headDeadline = null;
		}
	}

	private static void reject(ChannelHandlerContext ctx, HttpResponseStatus status, String message) {
		byte[] body = Api.JSON.writeValueAsBytes(new Dto.ErrorEnvelope(new Dto.ErrorBody(message,
				status.code() == 408 ? "timeout" : "invalid_request_error", null, null)));
		FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(body));
		r.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON);
		r.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, body.length);
		r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
		ctx.writeAndFlush(r).addListener(ChannelFutureListener.CLOSE);
	}

}
