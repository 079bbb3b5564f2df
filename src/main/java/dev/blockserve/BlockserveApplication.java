package dev.blockserve;

import dev.blockserve.cli.Cli;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/**
 * Entry point: the command line ({@link Cli}). {@code java -jar blockserve.jar [serve] [--name=value...]}
 * starts the server; {@code generate}, {@code --help} and {@code --version} run without starting Spring.
 */
@SpringBootApplication
@ConfigurationPropertiesScan
public class BlockserveApplication {

	public static void main(String[] args) {
		boolean[] serving = { false };
		int code = Cli.run(args, springArgs -> {
			serving[0] = true;
			exitZeroOnStopSignal();
			SpringApplication.run(BlockserveApplication.class, springArgs);
		}, new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true));
		if (!serving[0] || code != 0) {
			System.exit(code); // a command, help or an error; the server's own threads keep it running
		}
	}

	/**
	 * SIGTERM ({@code docker stop}, Kubernetes) and SIGINT are a requested stop, not a failure: the JVM's
	 * own handler would exit 143/130 after the shutdown hooks; this one runs the same hooks (Spring's
	 * graceful shutdown lets streams in flight finish, then the engine closes) and exits 0.
	 */
	static void exitZeroOnStopSignal() {
		for (String name : new String[] { "TERM", "INT" }) {
			try {
				sun.misc.Signal.handle(new sun.misc.Signal(name), s -> System.exit(0));
			}
			catch (IllegalArgumentException e) {
				// the platform has no such signal, or the JVM reserves it (-Xrs): keep its default
			}
		}
	}
}
