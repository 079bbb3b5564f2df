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

/** The dashboard with a 100,000-block pool: every block drawn, counts right; the draw time is logged. */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=100000",
				"blockserve.kv-cache.block-size=1", "blockserve.admin.stream-interval=200ms" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LargePoolDashboardTest {

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
	void drawsAHundredThousandBlocks() {
		driver.get("http://127.0.0.1:" + port + "/admin");
		new WebDriverWait(driver, Duration.ofSeconds(30)).until(d -> ((Number) ((JavascriptExecutor) d)
			.executeScript("return window.dashboard ? window.dashboard.frames : 0")).intValue() >= 5);
		Map<String, Object> r = (Map<String, Object>) ((JavascriptExecutor) driver).executeScript("""
				const d = window.dashboard, c = document.getElementById('map');
				return { blocks: d.snapshot.numBlocks, used: d.snapshot.used, drawnUsed: d.drawnUsed,
				         width: c.width, height: c.height, ms: d.lastDrawMs, frames: d.frames };
				""");
		assertThat(((Number) r.get("blocks")).intValue()).isEqualTo(100_000);
		assertThat(((Number) r.get("drawnUsed")).intValue()).isEqualTo(((Number) r.get("used")).intValue());
		long cells = ((Number) r.get("width")).longValue() * ((Number) r.get("height")).longValue();
		assertThat(cells).as("a pixel or more per block").isGreaterThanOrEqualTo(100_000);
		LoggerFactory.getLogger(getClass()).info("Dashboard with 100,000 blocks: canvas {}x{}, last draw {} ms",
				r.get("width"), r.get("height"), r.get("ms"));
	}
}
