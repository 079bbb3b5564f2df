package dev.blockserve.api;

import dev.blockserve.engine.EngineException;
import dev.blockserve.engine.EngineUnavailableException;
import dev.blockserve.engine.RequestTimeoutException;
import dev.blockserve.engine.UnsatisfiableRequestException;
import io.github.resilience4j.bulkhead.BulkheadFullException;
import tools.jackson.core.JacksonException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Mono;

import org.springframework.core.annotation.Order;
import org.springframework.core.io.buffer.DataBufferLimitException;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.server.ResponseStatusException;
import org.springframework.web.server.ServerWebExchange;
import org.springframework.web.server.WebExceptionHandler;

/**
 * Every failure as OpenAI's error envelope with the right status: validation 400 (also a request whose own
 * constraints turn out, while it runs, to leave no token), unknown model 404,
 * oversized body 413, malformed JSON or an unreadable value 400 (never 500), a full queue 429 with
 * Retry-After, a past deadline 408, an engine that is down 503, internal failures 500 with no stack
 * trace in the body. Stateless: any request thread.
 */
@Order(-2)
public final class ApiErrorHandler implements WebExceptionHandler {

	private static final Logger log = LoggerFactory.getLogger(ApiErrorHandler.class);

	static ApiException toApi(Throwable t) {
		for (Throwable c = t; c != null; c = c.getCause()) {
			if (c instanceof ApiException a) {
				return a;
			}
			if (c instanceof EngineUnavailableException u) {
				return u.overloaded() ? ApiException.tooManyRequests(u.getMessage(), u.retryAfterSeconds())
						: new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "service_unavailable", u.getMessage(), null,
								"engine_unavailable", 5);
			}
			// a body past Reactor Netty's read timeout (Netty's ReadTimeoutException) or request timeout (Reactor
			// Netty's RequestTimeoutException, a package-private class: known only by its name)
			if (c instanceof io.netty.handler.timeout.TimeoutException
					|| c.getClass().getSimpleName().equals("RequestTimeoutException") && !(c instanceof RequestTimeoutException)) {
				return new ApiException(HttpStatus.REQUEST_TIMEOUT, "timeout",
						"the request body did not arrive in time (blockserve.api.http.body-timeout, body-read-timeout)", null,
						"request_timeout");
			}
			if (c instanceof UnsatisfiableRequestException) {
				return ApiException.badRequest(c.getMessage(), null);
			}
			if (c instanceof RequestTimeoutException) {
				return new ApiException(HttpStatus.REQUEST_TIMEOUT, "timeout", c.getMessage(), null, "request_timeout");
			}
			if (c instanceof BulkheadFullException) {
				return ApiException.tooManyRequests("the server is at capacity (request preparation queue full); retry shortly", 1);
			}
			if (c instanceof JacksonException j) {
				return ApiException.badRequest("a value in the request cannot be read: " + firstLine(j.getOriginalMessage()), null);
			}
			if (c instanceof DataBufferLimitException) {
				return new ApiException(HttpStatus.PAYLOAD_TOO_LARGE, "invalid_request_error",
						"the request body is too large: " + c.getMessage(), null, "request_too_large");
			}
		}
		if (t instanceof ResponseStatusException rse) {
			HttpStatus status = HttpStatus.resolve(rse.getStatusCode().value());
			if (status == null) {
				status = HttpStatus.BAD_REQUEST;
			}
			String msg = status == HttpStatus.NOT_FOUND ? "Not found" : rse.getReason() != null ? rse.getReason() : status.getReasonPhrase();
			return new ApiException(status, status.is4xxClientError() ? "invalid_request_error" : "server_error", msg,
					null, null);
		}
		if (t instanceof EngineException) {
			log.warn("Request failed in the engine: {}", t.getMessage());
			return new ApiException(HttpStatus.INTERNAL_SERVER_ERROR, "server_error", t.getMessage(), null, null);
		}
		log.error("Internal error", t);
		return new ApiException(HttpStatus.INTERNAL_SERVER_ERROR, "server_error",
				"internal server error (" + t.getClass().getSimpleName() + "); see the server log", null, null);
	}

	private static String firstLine(String s) {
		if (s == null) {
			return "";
		}
		int nl = s.indexOf('\n');
		return nl < 0 ? s : s.substring(0, nl);
	}

	@Override
	public Mono<Void> handle(ServerWebExchange exchange, Throwable ex) {
		var response = exchange.getResponse();
		if (response.isCommitted()) {
			return Mono.error(ex);
		}
		ApiException api = toApi(ex);
		response.setStatusCode(api.status());
		response.getHeaders().setContentType(MediaType.APPLICATION_JSON);
		if (api.retryAfterSeconds() > 0) {
			response.getHeaders().set("Retry-After", Integer.toString(api.retryAfterSeconds()));
		}
		byte[] body = Api.JSON.writeValueAsBytes(
				new Dto.ErrorEnvelope(new Dto.ErrorBody(api.getMessage(), api.type(), api.param(), api.code())));
		if (api.status() == HttpStatus.PAYLOAD_TOO_LARGE || api.status() == HttpStatus.REQUEST_TIMEOUT) {
			// the rest of an oversized or stalled body is not worth waiting for: end the connection after answering
			response.getHeaders().set("Connection", "close");
			return response.writeWith(Api.bytes(body));
		}
		// A request answered before its body was read (an unknown route, a bad header) must not leave the
		// body's bytes on a kept-alive connection, where they would be read as the next request.
		return exchange.getRequest()
			.getBody()
			.doOnNext(org.springframework.core.io.buffer.DataBufferUtils::release)
			.onErrorResume(e -> reactor.core.publisher.Flux.empty())
			.then(response.writeWith(Api.bytes(body)));
	}
}
