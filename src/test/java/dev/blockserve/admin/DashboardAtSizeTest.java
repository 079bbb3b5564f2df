package dev.blockserve.admin;

import java.nio.file.Files;
import java.time.Duration;
import java.util.Map;

import dev.blockserve.BlockserveApplication;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.condition.EnabledIf;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;
import org.slf4j.LoggerFactory;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The dashboard in Chromium at a pool size (256 blocks; 26,214, the default pool of 512 MB; 1,000,000):
 * the in-use count the page drew equals the snapshot's, beyond 8,192 blocks cells stand for groups and a
 * click zooms into one region block by block, the slowest warm frame is measured and logged, and a
 * screenshot lands in target/. One subclass per size, each with its own server.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class DashboardAtSizeTest {

	abstract int blocks();

	@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
			properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=256",
					"blockserve.admin.stream-interval=200ms" })
	static class Small extends DashboardAtSizeTest {

		@Override
		int blocks() {
			return 256;
		}
	}

	@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
			properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=26214",
					"blockserve.kv-cache.block-size=1", "blockserve.admin.stream-interval=200ms" })
	static class DefaultPool extends DashboardAtSizeTest {

		@Override
		int blocks() {
			return 26_214;
		}
	}

	@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
			properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=1000000",
					"blockserve.kv-cache.block-size=1", "blockserve.admin.stream-interval=200ms" })
	static class Million extends DashboardAtSizeTest {

		@Override
		int blocks() {
			return 1_000_000;
		}
	}

	@LocalServerPort
	int port;

	ChromeDriver driver;

	@BeforeAll
	void browser() throws Exception {
		if (System.getenv("CI") == null) {
			Assumptions.assumeTrue(Files.isExecutable(BrowserDashboardTest.CHROMEDRIVER),
					"skipped: Debian's chromium and chromium-driver are not installed");
		}
		ChromeOptions options = new ChromeOptions();
		options.setBinary(BrowserDashboardTest.CHROMIUM.toFile());
		options.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--window-size=1400,1000",
				"--user-data-dir=" + Files.createTempDirectory("blockserve-chromium"));
		driver = new ChromeDriver(new ChromeDriverService.Builder()
			.usingDriverExecutable(BrowserDashboardTest.CHROMEDRIVER.toFile()).usingAnyFreePort().build(), options);
	}

	@AfterAll
	void quit() {
		if (driver != null) {
			driver.quit();
		}
	}

	@SuppressWarnings("unchecked")
	@Test
	void drawsThePoolWithTheSnapshotsCounts() throws Exception {
		// some requests in flight, so blocks are in use while the page draws
		java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
		for (int i = 0; i < 4; i++) {
			http.sendAsync(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/v1/completions"))
				.header("Content-Type", "application/json")
				.POST(java.net.http.HttpRequest.BodyPublishers.ofString(
						"{\"prompt\": \"Once upon a time " + i + "\", \"max_tokens\": 200, \"ignore_eos\": true}"))
				.build(), java.net.http.HttpResponse.BodyHandlers.discarding());
		}
		driver.get("http://127.0.0.1:" + port + "/admin");
		JavascriptExecutor js = (JavascriptExecutor) driver;
		new WebDriverWait(driver, Duration.ofSeconds(60)).until(d -> ((Number) js
			.executeScript("return window.dashboard ? window.dashboard.frames : 0")).intValue() >= 8);
		Map<String, Object> r = (Map<String, Object>) js.executeScript("""
				const d = window.dashboard, c = document.getElementById('map');
				return { blocks: d.snapshot.numBlocks, used: d.snapshot.used, drawnUsed: d.drawnUsed, cells: d.drawnCells,
				         width: c.width, height: c.height, ms: d.lastDrawMs, maxMs: d.maxDrawMs, frames: d.frames };
				""");
		assertThat(((Number) r.get("blocks")).intValue()).isEqualTo(blocks());
		assertThat(((Number) r.get("drawnUsed")).intValue()).as("in-use count drawn vs the snapshot")
			.isEqualTo(((Number) r.get("used")).intValue());
		int cells = ((Number) r.get("cells")).intValue();
		if (blocks() <= 8192) {
			assertThat(cells).as("one cell per block").isEqualTo(blocks());
		}
		else {
			assertThat(cells).as("grouped cells").isLessThanOrEqualTo(8192).isGreaterThan(4000);
		}
		java.nio.file.Path shot = java.nio.file.Path.of("target", "dashboard-" + blocks() + ".png");
		Files.write(shot, driver.getScreenshotAs(org.openqa.selenium.OutputType.BYTES));
		double maxMs = ((Number) r.get("maxMs")).doubleValue();
		LoggerFactory.getLogger(getClass()).info("Dashboard with {} blocks: {} cells on a {}x{} canvas, last frame {} ms, "
				+ "slowest {} ms over {} frames; screenshot {}", blocks(), cells, r.get("width"), r.get("height"), r.get("ms"),
				maxMs, r.get("frames"), shot);
		// The frame time is reported, not asserted: on the 2-core machines the server (streaming a 1 MB
		// snapshot every 200 ms and generating) and the browser share the cores, and a million-block frame
		// measured 19-69 ms here, over the 16 ms target (issue 16 stays open for it).
		assertThat(maxMs).as("a frame was measured").isPositive();
		if (blocks() > 8192) {
			// a click zooms into one region, block by block
			driver.findElement(org.openqa.selenium.By.id("map")).click();
			Number zoomedCells = (Number) js.executeScript("return window.dashboard.drawnCells");
			assertThat(zoomedCells.intValue()).isEqualTo(8192);
			Files.write(java.nio.file.Path.of("target", "dashboard-" + blocks() + "-zoomed.png"),
					driver.getScreenshotAs(org.openqa.selenium.OutputType.BYTES));
		}
	}
}
