package dev.blockserve.admin;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A keep-alive connection answers every request on it, however quickly each is answered. Reactor Netty
 * up to 1.3.7 stopped reading a connection when a request that had arrived before the previous
 * response ended was then answered synchronously (reactor-netty issue 4361): the API key filter's 401
 * is such an answer, so the next request on the connection was never read and, after the header
 * timeout, got a 408 (seen in CI as MetricsAndAdminApiTest.adminNeedsItsKey's third request).
 */
class KeepAliveTest extends ObservabilityTestBase {

	@Test
	void aRequestAfterAQueuedSynchronousRejectionIsRead() throws Exception {
		try (Socket s = new Socket("127.0.0.1", port)) {
			s.setSoTimeout(5_000);
			// two requests in one write: the second arrives while the first is still being answered
			String completion = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 4, \"temperature\": 0}";
			send(s, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
					+ completion.length() + "\r\n\r\n" + completion
					+ "GET /admin/api/blocks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
			assertThat(readOne(s.getInputStream())).isEqualTo(200);
			assertThat(readOne(s.getInputStream())).isEqualTo(401);
			// the next request on the connection must be read and answered (before: never read)
			send(s, "GET /admin/api/blocks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer admin-secret\r\n\r\n");
			assertThat(readOne(s.getInputStream())).isEqualTo(200);
		}
	}

	/**
	 * Rejections and answers in the order an HTTP client sends them: each request once the previous answer
	 * has arrived. In this order the bug needed a request to arrive before the previous answer's operations
	 * ended, which happened by chance (once in CI); the test above makes it certain.
	 */
	@Test
	void sequentialRequestsAfterRejectionsOnOneConnection() throws Exception {
		try (Socket s = new Socket("127.0.0.1", port)) {
			s.setSoTimeout(5_000);
			for (int round = 0; round < 50; round++) {
				for (String[] r : new String[][] { { "", "401" }, { "Authorization: Bearer wrong\r\n", "401" },
						{ "Authorization: Bearer admin-secret\r\n", "200" } }) {
					send(s, "GET /admin/api/blocks HTTP/1.1\r\nHost: 127.0.0.1\r\n" + r[0] + "\r\n");
					assertThat(readOne(s.getInputStream())).as("round %d, %s", round, r[0]).isEqualTo(Integer.parseInt(r[1]));
				}
			}
		}
	}

	private static void send(Socket s, String request) throws Exception {
		s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
		s.getOutputStream().flush();
	}

	/** Reads one response with a Content-Length (as these routes answer) and returns its status. */
	private static int readOne(InputStream in) throws Exception {
		ByteArrayOutputStream head = new ByteArrayOutputStream();
		while (!head.toString(StandardCharsets.ISO_8859_1).endsWith("\r\n\r\n")) {
			int c = in.read();
			if (c < 0) {
				throw new IllegalStateException("connection closed after: " + head);
			}
			head.write(c);
		}
		String h = head.toString(StandardCharsets.ISO_8859_1);
		Matcher len = Pattern.compile("(?im)^content-length: *(\\d+)").matcher(h);
		assertThat(len.find()).as("a Content-Length in\n%s", h).isTrue();
		in.readNBytes(Integer.parseInt(len.group(1)));
		return Integer.parseInt(h.substring(9, 12));
	}
}
