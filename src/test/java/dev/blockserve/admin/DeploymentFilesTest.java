package dev.blockserve.admin;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import reactor.netty.resources.LoopResources;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.Environment;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * docker-compose.yml is valid, the Grafana dashboard asks only for metrics the application exports, and a
 * stop fits in docker stop's grace period.
 */
class DeploymentFilesTest extends ObservabilityTestBase {

	@Autowired
	Environment env;

	/**
	 * A stop is the graceful phase (streams finish) and then the event loops' quiet period; both must fit
	 * in docker stop's 10 s grace with a second to spare for the JVM and the engine, or the container is
	 * killed (exit 137) instead of exiting 0.
	 */
	@Test
	void shutdownFitsInDockerStopsGracePeriod() {
		Binder b = Binder.get(env);
		Duration phase = b.bind("spring.lifecycle.timeout-per-shutdown-phase", Duration.class).orElse(Duration.ofSeconds(30));
		Duration quiet = b.bind("spring.reactor.netty.shutdown-quiet-period", Duration.class)
			.orElse(Duration.ofSeconds(LoopResources.DEFAULT_SHUTDOWN_QUIET_PERIOD));
		assertThat(phase.plus(quiet)).as("graceful phase %s + quiet period %s", phase, quiet).isLessThanOrEqualTo(Duration.ofSeconds(9));
	}

	@Test
	void grafanaDashboardReferencesOnlyExportedMetrics() throws Exception {
		post("/v1/completions", "{\"prompt\": \"Once\", \"max_tokens\": 3}");
		String text = get("/actuator/prometheus", null).body();
		Set<String> exported = new HashSet<>();
		Matcher e = Pattern.compile("(?m)^(blockserve_[a-z0-9_]+)[{ ]").matcher(text);
		while (e.find()) {
			exported.add(e.group(1));
		}
		JsonNode dash = JsonMapper.builder().build().readTree(Path.of("deploy/grafana/dashboards/blockserve.json").toFile());
		Set<String> referenced = new HashSet<>();
		for (JsonNode panel : dash.path("panels")) {
			for (JsonNode target : panel.path("targets")) {
				Matcher m = Pattern.compile("blockserve_[a-z0-9_]+").matcher(target.path("expr").asString());
				while (m.find()) {
					referenced.add(m.group());
				}
			}
		}
		Matcher v = Pattern.compile("blockserve_[a-z0-9_]+").matcher(dash.path("templating").toString());
		while (v.find()) {
			referenced.add(v.group());
		}
		assertThat(referenced).hasSizeGreaterThan(15);
		assertThat(exported).containsAll(referenced);
		assertThat(Files.readString(Path.of("deploy/prometheus/prometheus.yml"))).contains("/actuator/prometheus");
	}

	@Test
	void composeFileIsAcceptedByDockerCompose() throws Exception {
		String[] cmd = null;
		if (run("docker", "compose", "version") == 0) {
			cmd = new String[] { "docker", "compose", "-f", "docker-compose.yml", "config", "--quiet" };
		}
		else if (run("docker-compose", "version") == 0) {
			cmd = new String[] { "docker-compose", "-f", "docker-compose.yml", "config", "--quiet" };
		}
		if (System.getenv("CI") == null) {
			Assumptions.assumeTrue(cmd != null, "skipped: neither the docker compose plugin nor docker-compose is installed");
		}
		assertThat(cmd).as("CI installs docker-compose").isNotNull();
		StringBuilder out = new StringBuilder();
		assertThat(run(java.util.Map.of("MODEL_DIR", Path.of("src").toAbsolutePath().toString()), out, cmd))
			.as(String.join(" ", cmd) + "\n" + out).isZero();
		// without a model folder, one clear message instead of a container that cannot start
		StringBuilder missing = new StringBuilder();
		assertThat(run(java.util.Map.of(), missing, cmd)).isNotZero();
		assertThat(missing.toString()).contains("set MODEL_DIR to a model folder");
	}

	private static int run(String... cmd) {
		return run(java.util.Map.of(), new StringBuilder(), cmd);
	}

	private static int run(java.util.Map<String, String> env, StringBuilder output, String... cmd) {
		try {
			ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
			pb.environment().remove("MODEL_DIR");
			pb.environment().putAll(env);
			Process p = pb.start();
			output.append(new String(p.getInputStream().readAllBytes()));
			return p.waitFor(60, TimeUnit.SECONDS) ? p.exitValue() : -1;
		}
		catch (Exception e) {
			return -1;
		}
	}
}
