package dev.blockserve.api;

import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;

import org.springframework.web.reactive.function.server.ServerRequest;

/**
 * Tells the server's own start-up requests from its clients': they carry {@link #HEADER} with a secret
 * made when the process starts, which nothing outside it learns. Such requests are not rate-limited nor
 * observed. Immutable; any thread.
 */
public final class WarmupRequests {

	public static final String HEADER = "X-Blockserve-Warmup";

	private final String secret;

	public WarmupRequests() {
		byte[] b = new byte[16];
		new SecureRandom().nextBytes(b);
		this.secret = HexFormat.of().formatHex(b);
	}

	/** The value the warm-up's requests send. */
	public String secret() {
		return secret;
	}

	/** Whether a request's header value is this process's secret (compared in constant time). */
	public boolean isWarmup(String header) {
		return header != null && MessageDigest.isEqual(header.getBytes(java.nio.charset.StandardCharsets.UTF_8),
				secret.getBytes(java.nio.charset.StandardCharsets.UTF_8));
	}

	public boolean isWarmup(ServerRequest req) {
		return isWarmup(req.headers().firstHeader(HEADER));
	}
}
