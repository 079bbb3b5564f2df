package dev.blockserve.container;

import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;

/** Runs Docker Compose: the compose plugin ({@code docker compose}) or Debian's {@code docker-compose}. */
final class ComposeSupport {

	private ComposeSupport() {
	}

	record Result(int exit, String output) {
	}

	/** The compose command, or a skip (a failure under CI) when neither is installed. */
	static String[] command() throws Exception {
		if (run(Map.of(), 30, "docker", "compose", "version").exit() == 0) {
			return new String[] { "docker", "compose" };
		}
		if (run(Map.of(), 30, "docker-compose", "version").exit() == 0) {
			return new String[] { "docker-compose" };
		}
		if ("true".equals(System.getenv("CI"))) {
			throw new AssertionError("CI=true but neither docker compose nor docker-compose is installed");
		}
		Assumptions.abort("skipped: neither the docker compose plugin nor docker-compose is installed");
		return null;
	}

	static Result run(Map<String, String> env, int timeoutSeconds, Object... parts) throws Exception {
		List<String> cmd = new ArrayList<>();
		for (Object p : parts) {
			if (p instanceof String[] a) {
				cmd.addAll(List.of(a));
			}
			else {
				cmd.add((String) p);
			}
		}
		ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
		pb.environment().putAll(env);
		Process p;
		try {
			p = pb.start();
		}
		catch (java.io.IOException e) {
			return new Result(-1, e.getMessage());
		}
		String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
		if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
			p.destroyForcibly();
			return new Result(-1, out + "\n(timed out)");
		}
		return new Result(p.exitValue(), out);
	}

	static int freePort() throws Exception {
		try (ServerSocket s = new ServerSocket(0)) {
			return s.getLocalPort();
		}
	}
}
