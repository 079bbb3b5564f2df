package dev.blockserve.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;

import reactor.core.publisher.Mono;

import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.server.ServerWebExchange;
import org.springframework.web.server.WebFilter;
import org.springframework.web.server.WebFilterChain;

/**
 * Requires {@code Authorization: Bearer <key>} with one of the configured keys on the paths it guards.
 * With no keys configured it lets everything through. Keys are compared in constant time.
 */
public final class ApiKeyFilter implements WebFilter {

	private final List<byte[]> keys;

	private final List<String> prefixes;

	private final String what;

	public ApiKeyFilter(List<String> keys, List<String> prefixes, String what) {
		this.keys = keys.stream().filter(k -> k != null && !k.isBlank()).map(k -> k.getBytes(StandardCharsets.UTF_8)).toList();
		this.prefixes = prefixes;
		this.what = what;
	}

	@Override
	public Mono<Void> filter(ServerWebExchange exchange, WebFilterChain chain) {
		String path = exchange.getRequest().getPath().pathWithinApplication().value();
		if (keys.isEmpty() || prefixes.stream().noneMatch(path::startsWith)) {
			return chain.filter(exchange);
		}
		String auth = exchange.getRequest().getHeaders().getFirst(HttpHeaders.AUTHORIZATION);
		String given = auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7) ? auth.substring(7).trim() : null;
		if (given == null && exchange.getRequest().getQueryParams().containsKey("key")) {
			given = exchange.getRequest().getQueryParams().getFirst("key"); // EventSource cannot set headers
		}
		if (given != null) {
			byte[] g = given.getBytes(StandardCharsets.UTF_8);
			for (byte[] k : keys) {
				if (MessageDigest.isEqual(k, g)) {
					return chain.filter(exchange);
				}
			}
		}
		var response = exchange.getResponse();
		response.setStatusCode(HttpStatus.UNAUTHORIZED);
		response.getHeaders().setContentType(MediaType.APPLICATION_JSON);
		String msg = given == null ? "Missing " + what + " key: send 'Authorization: Bearer <key>'"
				: "Incorrect " + what + " key provided";
		byte[] body = Api.JSON.writeValueAsBytes(new Dto.ErrorEnvelope(
				new Dto.ErrorBody(msg, "invalid_request_error", null, "invalid_api_key")));
		return response.writeWith(Api.bytes(body));
	}
}
