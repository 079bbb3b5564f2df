package dev.blockserve;

import dev.blockserve.cli.GenerateCommand;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/**
 * Entry point. {@code java -jar blockserve.jar} starts the server; {@code java -jar blockserve.jar generate ...}
 * runs the offline generator without starting Spring.
 */
@SpringBootApplication
@ConfigurationPropertiesScan
public class BlockserveApplication {

	public static void main(String[] args) {
		if (args.length > 0 && args[0].equals("generate")) {
			System.exit(GenerateCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length), System.out, System.err));
		}
		SpringApplication.run(BlockserveApplication.class, args);
	}
}
