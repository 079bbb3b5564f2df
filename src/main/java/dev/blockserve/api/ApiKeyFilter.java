package dev.blockserve.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.function.Predicate;

import reactor.core.publisher.Mono;

import org.springframework.http.HttpCookie;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.server.ServerWebExchange;
import org.springframework.web.server.WebFilter;
import org.springframework.web.server.WebFilterChain;

/**
 * Requires {@code Authorization: Bearer <key>} with one of the configured keys on the routes it guards.
 * The decision is made on the request's {@link CanonicalPath}, never on the raw string the client sent,
 * so every spelling of a protected route (encoded or double-encoded characters, {@code //}, {@code /./},
 * {@code /../}, a trailing slash, {@code ;} parameters, case) needs the key. Keys are taken from the
 * header alone (keys in URLs end up in logs); the admin filter also accepts a dashboard session cookie.
 * With no keys configured it lets everything through. Keys are compared in constant time.
 * Stateless apart from the sessions: any request thread.
 */
public final class ApiKeyFilter implements WebFilter {

	private final List<byte[]> keys;

	private final Predicate<String> guarded;

	private final String what;

	private final AdminSessions sessions;

	private ApiKeyFilter(List<String> keys, Predicate<String> guarded, String what, AdminSessions sessions) {
		this.keys = keys.stream().filter(k -> k != null && !k.isBlank()).map(k -> k.getBytes(StandardCharsets.UTF_8)).toList();
		this.guarded = guarded;
		this.what = what;
		this.sessions = sessions;
	}

	/**
	 * The OpenAI API's keys: deny by default. Every path needs one except the health, version and
	 * metrics endpoints and the admin routes (which have their own key).
	 */
	public static ApiKeyFilter api(List<String> keys) {
		return new ApiKeyFilter(keys, p -> !(p.equals("/health") || p.equals("/version") || p.equals("/metrics")
				|| CanonicalPath.under(p, "/actuator") || CanonicalPath.under(p, "/admin")), "API", null);
	}

	/** The admin key: the dashboard's data ({@code /admin/api/**}); the page itself holds no data. */
	public static ApiKeyFilter admin(String key, AdminSessions sessions) {
		return new ApiKeyFilter(key == null ? List.of() : List.of(key), p -> CanonicalPath.under(p, "/admin/api"),
				"admin", sessions);
	}

	/** Whether this filter asks for a key on the route that {@code rawPath} names. */
	public boolean guards(String rawPath) {
		if (keys.isEmpty()) {
			return false;
		}
		String p = CanonicalPath.of(rawPath);
		return p == null || guarded.test(p);
	}

	@Override
	public Mono<Void> filter(ServerWebExchange exchange, WebFilterChain chain) {
		if (!guards(exchange.getRequest().getURI().getRawPath())) {
			return chain.filter(exchange);
		}
		String auth = exchange.getRequest().getHeaders().getFirst(HttpHeaders.AUTHORIZATION);
		String given = auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7) ? auth.substring(7).trim() : null;
		if (given != null && matches(given)) {
			return chain.filter(exchange);
		}
		if (given == null && sessions != null) {
			HttpCookie c = exchange.getRequest().getCookies().getFirst(AdminSessions.COOKIE);
			if (c != null && sessions.valid(c.getValue())) {
				return chain.filter(exchange);
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

	private boolean matches(String given) {
		byte[] g = given.getBytes(StandardCharsets.UTF_8);
		boolean ok = false;
		for (byte[] k : keys) {
			ok |= MessageDigest.isEqual(k, g);
		}
		return ok;
	}
}
