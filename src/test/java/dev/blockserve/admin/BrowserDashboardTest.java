package dev.blockserve.admin;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.support.ui.WebDriverWait;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The dashboard in a real headless Chromium (Debian's chromium and chromium-driver; installed here when
 * missing and this runs as root): the block map drawn on the canvas matches the snapshot it came from,
 * and clicking a request highlights exactly its blocks.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BrowserDashboardTest extends ObservabilityTestBase {

	HeadlessChromium browser;

	ChromeDriver driver;

	@BeforeAll
	void browser() throws Exception {
		if (!Files.isExecutable(HeadlessChromium.CHROMEDRIVER) && "root".equals(System.getProperty("user.name"))) {
			new ProcessBuilder("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver")
				.inheritIO().start().waitFor();
		}
		boolean ci = System.getenv("CI") != null;
		if (!ci) {
			Assumptions.assumeTrue(HeadlessChromium.installed(),
					"skipped: Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)");
		}
		browser = new HeadlessChromium();
		driver = browser.driver;
	}

	@AfterAll
	void quit() {
		if (browser != null) {
			browser.close();
			assertThat(browser.profile).as("the browser's profile folder, deleted").doesNotExist();
		}
	}

	/** Counts, on the canvas itself, the cells per colour, together with the snapshot drawn (one JS turn). */
	@SuppressWarnings("unchecked")
	Map<String, Object> countCells() {
		return (Map<String, Object>) ((JavascriptExecutor) driver).executeScript("""
				const d = window.dashboard, s = d.snapshot, c = document.getElementById('map');
				const g = c.getContext('2d'), px = g.getImageData(0, 0, c.width, c.height).data;
				const n = s.numBlocks, cell = c.width / Math.max(1, Math.floor(c.width / Math.max(1, Math.floor(Math.sqrt(c.width * c.width * 0.5625 / n)) > 24 ? 24 : Math.max(1, Math.floor(Math.sqrt(c.width * c.width * 0.5625 / n))))));
				const css = getComputedStyle(document.documentElement);
				const hex = v => css.getPropertyValue(v).trim().slice(1).toLowerCase();
				const used = hex('--used'), shared = hex('--shared'), sel = hex('--sel');
				const size = Number(c.width) / Math.floor(c.width / 1) ;
				// recover the layout the page used
				let cellPx = Math.max(1, Math.floor(Math.sqrt(c.width * c.width * 0.5625 / n))); cellPx = Math.min(cellPx, 24);
				const cols = Math.floor(c.width / cellPx);
				let inUse = 0, selected = 0;
				for (let b = 0; b < n; b++) {
				  const x = (b % cols) * cellPx, y = Math.floor(b / cols) * cellPx, i = (y * c.width + x) * 4;
				  const h = [px[i], px[i + 1], px[i + 2]].map(v => v.toString(16).padStart(2, '0')).join('');
				  if (h === used || h === shared) inUse++;
				  if (h === sel) { selected++; if (s.states.charCodeAt(b) === 50) inUse++; }
				}
				const req = s.requests.find(r => r.id === d.selected);
				return { inUse, selected, snapshotUsed: s.used, statesUsed: s.states.split('2').length - 1,
				         selectedBlocks: req ? req.blocks.length : -1, frames: d.frames, requests: s.requests.length,
				         selectedRows: document.querySelectorAll('#rows tr.selected').length,
				         detail: document.getElementById('detail').textContent };
				""");
	}

	@Test
	void blockMapMatchesTheSnapshotAndSelectionHighlightsTheTable() throws Exception {
		// stories260K finishes a request in about a second: keep a bounded load running for the whole test
		java.util.concurrent.ScheduledExecutorService load = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
		java.util.concurrent.atomic.AtomicInteger started = new java.util.concurrent.atomic.AtomicInteger();
		load.scheduleAtFixedRate(() -> {
			if (started.incrementAndGet() <= 200) {
				startLongRequest(2, 490);
			}
		}, 0, 250, java.util.concurrent.TimeUnit.MILLISECONDS);
		try {
			checkDashboard();
		}
		finally {
			load.shutdownNow();
		}
	}

	void checkDashboard() throws Exception {
		driver.get(url("/admin"));
		WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(30));
		// the admin key is set: the page asks for it once and then lives on a session cookie
		wait.until(d -> d.findElement(org.openqa.selenium.By.id("login")).isDisplayed());
		driver.findElement(org.openqa.selenium.By.id("key")).sendKeys("admin-secret");
		driver.findElement(org.openqa.selenium.By.cssSelector("#login button")).click();
		wait.until(d -> {
			Object r = ((JavascriptExecutor) d).executeScript(
					"return window.dashboard && window.dashboard.snapshot ? window.dashboard.snapshot.requests.length : 0");
			return ((Number) r).intValue() >= 2;
		});
		// the pool's size and the cache's type: 2000 blocks x 4 tokens x 5 layers x 4 KV heads x 8 x 2 x 4 bytes
		assertThat(driver.findElement(By.id("mapinfo")).getDomProperty("textContent")) // the text, before CSS upper-cases it
			.contains("2,000 blocks of 4 tokens (9.8 MiB, float32)");
		Map<String, Object> counts = countCells();
		assertThat(((Number) counts.get("inUse")).intValue()).as("cells drawn as in use vs the snapshot: " + counts)
			.isEqualTo(((Number) counts.get("snapshotUsed")).intValue())
			.isEqualTo(((Number) counts.get("statesUsed")).intValue())
			.isPositive();

		// stories260K finishes a request in about a second, so keep some running and retry until the click
		// lands on a request that is still alive when its highlighting is read back
		Map<String, Object> sel = null;
		for (int attempt = 0; attempt < 20 && (sel == null || ((Number) sel.get("selectedBlocks")).intValue() <= 0); attempt++) {
			Thread.sleep(150);
			try {
				List<WebElement> rows = driver.findElements(By.cssSelector("#rows tr"));
				if (rows.isEmpty()) {
					continue;
				}
				rows.get(rows.size() - 1).click();
				sel = countCells();
			}
			catch (org.openqa.selenium.StaleElementReferenceException e) {
				sel = null;
			}
		}
		assertThat(sel).isNotNull();
		assertThat(((Number) sel.get("selected")).intValue()).as("highlighted cells vs the request's block table: " + sel)
			.isEqualTo(((Number) sel.get("selectedBlocks")).intValue())
			.isPositive();
		// read in the same JS turn as the highlight count, so they describe the same frame
		assertThat((String) sel.get("detail")).contains("prompt").contains("blocks");
		assertThat(((Number) sel.get("selectedRows")).intValue()).isEqualTo(1);

		// the server speculates: once it has verified drafts the header shows the share kept
		new WebDriverWait(driver, Duration.ofSeconds(30)).until(d -> d.findElement(By.id("specStat")).isDisplayed());
		assertThat(driver.findElement(By.id("spec")).getText()).matches("[0-9]{1,3}%");

		File shot = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE);
		Path out = Path.of("target", "admin-dashboard.png");
		Files.copy(shot.toPath(), out, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
		assertThat(Files.size(out)).isGreaterThan(10_000);
	}
}
