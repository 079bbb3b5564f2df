package dev.blockserve.admin;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * Debian's headless Chromium driven by chromedriver, with a profile folder of its own that {@link #close()}
 * deletes after the browser has quit (each run left 3-4 MB of profile in the temp folder before). Owned by
 * the test class that opens it.
 */
final class HeadlessChromium implements AutoCloseable {

	static final Path CHROMIUM = Path.of("/usr/bin/chromium");

	static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");

	final Path profile;

	final ChromeDriver driver;

	HeadlessChromium() throws IOException {
		this.profile = Files.createTempDirectory("blockserve-chromium");
		ChromeOptions options = new ChromeOptions();
		options.setBinary(CHROMIUM.toFile());
		options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--window-size=1400,1000", "--user-data-dir=" + profile);
		ChromeDriver started;
		try {
			started = new ChromeDriver(new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
				.usingAnyFreePort().build(), options);
		}
		catch (RuntimeException e) {
			deleteTree(profile);
			throw e;
		}
		this.driver = started;
	}

	static boolean installed() {
		return Files.isExecutable(CHROMEDRIVER) && Files.isExecutable(CHROMIUM);
	}

	/** Quits the browser (chromedriver waits for its processes to end), then deletes its profile. */
	@Override
	public void close() {
		try {
			driver.quit();
		}
		finally {
			deleteTree(profile);
		}
	}

	static void deleteTree(Path dir) {
		if (!Files.exists(dir)) {
			return;
		}
		try (Stream<Path> all = Files.walk(dir)) {
			for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
				Files.deleteIfExists(p);
			}
		}
		catch (IOException e) {
			throw new UncheckedIOException("could not delete the browser profile " + dir, e);
		}
	}
}
