package dev.blockserve.api;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** blockserve's version, from the build (Maven filters {@code blockserve-version.properties}). Immutable. */
public final class Version {

	public static final String VERSION = read();

	private Version() {
	}

	private static String read() {
		try (InputStream in = Version.class.getResourceAsStream("/blockserve-version.properties")) {
			if (in == null) {
				return "unknown";
			}
			Properties p = new Properties();
			p.load(in);
			return p.getProperty("version", "unknown");
		}
		catch (IOException e) {
			throw new UncheckedIOException(e);
		}
	}
}
