package dev.blockserve.api;

import org.junit.jupiter.api.Test;

import org.springframework.core.io.buffer.DataBufferLimitException;
import org.springframework.http.HttpStatus;
import org.springframework.mock.http.server.reactive.MockServerHttpRequest;
import org.springframework.mock.web.server.MockServerWebExchange;

import static org.assertj.core.api.Assertions.assertThat;

class ApiErrorHandlerTest {

	@Test
	void internalFailuresAre500WithoutAStackTrace() {
		MockServerWebExchange ex = MockServerWebExchange.from(MockServerHttpRequest.post("/v1/completions"));
		RuntimeException boom = new IllegalStateException("secret internal detail");
		new ApiErrorHandler().handle(ex, boom).block();
		assertThat(ex.getResponse().getStatusCode()).isEqualTo(HttpStatus.INTERNAL_SERVER_ERROR);
		String body = ex.getResponse().getBodyAsString().block();
		assertThat(body).startsWith("{\"error\":{\"message\":\"internal server error (IllegalStateException)")
			.contains("\"type\":\"server_error\"")
			.doesNotContain("secret internal detail")
			.doesNotContain("at dev.blockserve")
			.doesNotContain("Exception.java");
	}

	@Test
	void oversizedBodiesAre413EvenWhenWrapped() {
		ApiException api = ApiErrorHandler.toApi(new RuntimeException(new DataBufferLimitException("limit 65536")));
		assertThat(api.status()).isEqualTo(HttpStatus.PAYLOAD_TOO_LARGE);
		assertThat(api.code()).isEqualTo("request_too_large");
	}
}
