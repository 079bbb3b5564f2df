package dev.blockserve.api;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Locale;

/**
 * The one spelling of a request path that access decisions are made on: percent-decoded until nothing
 * changes (so double encoding cannot hide a character), backslashes as slashes, empty, {@code .} and
 * {@code ..} segments resolved, {@code ;parameters} dropped from each segment, no trailing slash, lower
 * case. It is at least as forgiving as the router, so no spelling that reaches a route escapes its check.
 * Stateless: any thread.
 */
public final class CanonicalPath {

	/** Decoding rounds at most; a path still changing after them is rejected by the caller. */
	private static final int MAX_DECODE_ROUNDS = 4;

	private CanonicalPath() {
	}

	/** The canonical form of a raw path, or null when it cannot be decoded (the caller treats that as protected). */
	public static String of(String rawPath) {
		String p = rawPath == null ? "" : rawPath;
		int q = p.indexOf('?');
		if (q >= 0) {
			p = p.substring(0, q);
		}
		for (int round = 0;; round++) {
			String d = decode(p);
			if (d == null) {
				return null;
			}
			if (d.equals(p)) {
				break;
			}
			if (round == MAX_DECODE_ROUNDS) {
				return null;
			}
			p = d;
		}
		p = p.replace('\\', '/');
		Deque<String> segments = new ArrayDeque<>();
		for (String seg : p.split("/")) {
			int semi = seg.indexOf(';');
			if (semi >= 0) {
				seg = seg.substring(0, semi);
			}
			seg = seg.trim();
			if (seg.isEmpty() || seg.equals(".")) {
				continue;
			}
			if (seg.equals("..")) {
				segments.pollLast();
				continue;
			}
			segments.addLast(seg.toLowerCase(Locale.ROOT));
		}
		return "/" + String.join("/", segments);
	}

	/** Whether {@code canonical} is {@code prefix} or lies below it ("/admin" covers "/admin/x", not "/adminx"). */
	public static boolean under(String canonical, String prefix) {
		return canonical.equals(prefix) || canonical.startsWith(prefix + "/");
	}

	/** One round of percent-decoding ('+' stays a plus, as in a path); null for a malformed escape. */
	private static String decode(String s) {
		if (s.indexOf('%') < 0) {
			return s;
		}
		try {
			return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
		}
		catch (IllegalArgumentException e) {
			return null;
		}
	}
}
