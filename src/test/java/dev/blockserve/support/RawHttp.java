package dev.blockserve.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * HTTP/1.1 over a plain socket, for requests an HTTP client would refuse or normalise: raw path
 * spellings, broken headers, truncated bodies. Sends the bytes as given and reads the whole answer
 * (the request says Connection: close). Bounded by a read timeout.
 */
public final class RawHttp {

	/** A response: status code, raw head and body as text. */
	public record Response(int status, String head, String body) {
	}

	private RawHttp() {
	}

	public static Response request(int port, String method, String path, String headers, String body)
			throws IOException {
		byte[] b = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
		String head = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
				+ (headers == null ? "" : headers) + (body == null ? "" : "Content-Type: application/json\r\nContent-Length: " + b.length + "\r\n")
				+ "\r\n";
		ByteArrayOutputStream req = new ByteArrayOutputStream();
		req.write(head.getBytes(StandardCharsets.ISO_8859_1));
		req.write(b);
		return send(port, req.toByteArray(), 30_000);
	}

	/** Sends {@code bytes} as they are and reads until the server closes or {@code timeoutMillis} pass. */
	public static Response send(int port, byte[] bytes, int timeoutMillis) throws IOException {
		try (Socket s = new Socket("127.0.0.1", port)) {
			s.setSoTimeout(timeoutMillis);
			OutputStream out = s.getOutputStream();
			out.write(bytes);
			out.flush();
			InputStream in = s.getInputStream();
			ByteArrayOutputStream all = new ByteArrayOutputStream();
			byte[] buf = new byte[8192];
			int n;
			try {
				while ((n = in.read(buf)) > 0) {
					all.write(buf, 0, n);
				}
			}
			catch (java.net.SocketTimeoutException e) {
				if (all.size() == 0) {
					throw e;
				}
			}
			String text = all.toString(StandardCharsets.UTF_8);
			while (text.startsWith("HTTP/1.1 1") && text.indexOf("\r\n\r\n") > 0) {
				text = text.substring(text.indexOf("\r\n\r\n") + 4); // an interim 1xx answer (100 Continue)
			}
			int sp = text.indexOf(' ');
			if (!text.startsWith("HTTP/") || sp < 0 || text.length() < sp + 4) {
				throw new IOException("not an HTTP response: " + text.substring(0, Math.min(80, text.length())));
			}
			int status = Integer.parseInt(text.substring(sp + 1, sp + 4));
			int end = text.indexOf("\r\n\r\n");
			return new Response(status, end < 0 ? text : text.substring(0, end), end < 0 ? "" : text.substring(end + 4));
		}
	}
}
