package dev.blockserve.container;

import java.nio.file.Path;

import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.Assumptions;
import org.testcontainers.DockerClientFactory;
import com.github.dockerjava.api.model.AccessMode;
import com.github.dockerjava.api.model.Bind;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import com.github.dockerjava.api.model.Volume;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.utility.DockerImageName;

/**
 * What the container tests share: the images (built from the Dockerfile by .ci/run, or by hand: see
 * README), and the rule that where no Docker engine or image is reachable the tests skip with the reason,
 * except under {@code CI=true}, where that fails them.
 */
final class ContainerSupport {

	/** The project's image, built from the Dockerfile. */
	static final String IMAGE = env("BLOCKSERVE_IMAGE", "blockserve:local");

	/** A Prometheus image (Debian's package on a debootstrap base where no registry is reachable). */
	static final String PROMETHEUS_IMAGE = env("BLOCKSERVE_PROMETHEUS_IMAGE", "blockserve-base/prometheus:bookworm");

	private ContainerSupport() {
	}

	static String env(String name, String dflt) {
		String v = System.getenv(name);
		return v == null || v.isBlank() ? dflt : v;
	}

	/** Whether a Docker engine answers. */
	static boolean dockerAvailable() {
		try {
			return DockerClientFactory.instance().isDockerAvailable();
		}
		catch (RuntimeException e) {
			return false;
		}
	}

	/** Skips (or under CI fails) unless a Docker engine answers and every image is present. */
	static void requireDockerAndImages(String... images) {
		boolean ci = "true".equals(System.getenv("CI"));
		if (!dockerAvailable()) {
			if (ci) {
				throw new AssertionError("CI=true but no Docker engine is reachable (.ci/run starts dockerd)");
			}
			Assumptions.abort("skipped: no Docker engine is reachable");
		}
		for (String image : images) {
			boolean present;
			try {
				DockerClientFactory.instance().client().inspectImageCmd(image).exec();
				present = true;
			}
			catch (RuntimeException e) {
				present = false;
			}
			if (!present) {
				if (ci) {
					throw new AssertionError("CI=true but image " + image + " is missing (.ci/run builds it)");
				}
				Assumptions.abort("skipped: image " + image + " is not built (see README: Containers)");
			}
		}
	}

	/**
	 * Publishes {@code ports} on 127.0.0.1 only, each on a free host port (Testcontainers would publish
	 * them on every interface); {@code getMappedPort} reads them back from the engine as usual.
	 */
	static <C extends GenericContainer<?>> C onLoopback(C c, int... ports) {
		for (int p : ports) {
			c.addExposedPort(p);
		}
		c.withCreateContainerCmdModifier(cmd -> {
			java.util.List<PortBinding> bindings = new java.util.ArrayList<>();
			for (int p : ports) {
				bindings.add(new PortBinding(Ports.Binding.bindIp("127.0.0.1"), ExposedPort.tcp(p)));
			}
			cmd.getHostConfig().withPortBindings(bindings).withPublishAllPorts(false);
		});
		return c;
	}

	/** The blockserve container serving {@code model} (a shared test model), mounted read-only. */
	@SuppressWarnings("resource")
	static GenericContainer<?> blockserve(String model) {
		Path dir = SharedModels.dir(model).toAbsolutePath().normalize();
		// the bind goes straight into the create command: withFileSystemBind would first check, with an
		// alpine container that cannot be pulled here, whether file mounts work (minutes of retries)
		return onLoopback(new GenericContainer<>(DockerImageName.parse(IMAGE))
			.withCreateContainerCmdModifier(cmd -> cmd.getHostConfig()
				.withBinds(new Bind(dir.toString(), new Volume("/models/model"), AccessMode.ro))), 8000)
			.withEnv("BLOCKSERVE_KV_CACHE_NUM_BLOCKS", "512")
			.waitingFor(Wait.forHealthcheck().withStartupTimeout(java.time.Duration.ofMinutes(3)));
	}
}
