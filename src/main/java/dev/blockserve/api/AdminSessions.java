package dev.blockserve.api;

import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Short-lived dashboard sessions: a browser that proved the admin key once (a POST with
 * {@code Authorization: Bearer}) gets a random token in an HttpOnly cookie, which its EventSource then
 * sends by itself, so the key never appears in a URL. Bounded: past {@link #MAX_SESSIONS} the oldest
 * expiry goes first. Thread-safe: request threads create and check sessions concurrently.
 */
public final class AdminSessions {

	public static final String COOKIE = "blockserve_admin";

	static final int MAX_SESSIONS = 1024;

	private final SecureRandom random = new SecureRandom();

	private final Map<String, Long> expiry = new ConcurrentHashMap<>();

	private final Duration ttl;

	public AdminSessions(Duration ttl) {
		this.ttl = ttl;
	}

	public Duration ttl() {
		return ttl;
	}

	/** A new session token, valid for {@link #ttl()}. */
	public String create() {
		byte[] b = new byte[32];
		random.nextBytes(b);
		String token = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
		long now = System.nanoTime();
		if (expiry.size() >= MAX_SESSIONS) {
			evict(now);
		}
		expiry.put(token, now + ttl.toNanos());
		return token;
	}

	public boolean valid(String token) {
		if (token == null) {
			return false;
		}
		Long until = expiry.get(token);
		if (until == null) {
			return false;
		}
		if (until - System.nanoTime() < 0) {
			expiry.remove(token);
			return false;
		}
		return true;
	}

	private void evict(long now) {
		String oldest = null;
		long oldestUntil = Long.MAX_VALUE;
		for (Iterator<Map.Entry<String, Long>> it = expiry.entrySet().iterator(); it.hasNext();) {
			Map.Entry<String, Long> e = it.next();
			if (e.getValue() - now < 0) {
				it.remove();
			}
			else if (e.getValue() < oldestUntil) {
				oldestUntil = e.getValue();
				oldest = e.getKey();
			}
		}
		if (expiry.size() >= MAX_SESSIONS && oldest != null) {
			expiry.remove(oldest);
		}
	}
}
