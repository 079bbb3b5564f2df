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
			SpringApplication.run(BlockserveApplication.class, springArgs);
		}, new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true));
		if (!serving[0] || code != 0) {
			System.exit(code); // a command, help or an error; the server's own threads keep it running
		}
	}
}
