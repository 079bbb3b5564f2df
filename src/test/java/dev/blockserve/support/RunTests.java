package dev.blockserve.support;

import java.io.PrintWriter;

import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

/**
 * Runs the named test classes in this JVM and exits 0 when every test passed and at least one ran, 1
 * otherwise, after printing the summary and each failure. A child JVM's entry point, for suites that must
 * run with other native libraries than the test JVM holds (CudaEmulatedGoldenTest).
 */
public final class RunTests {

	private RunTests() {
	}

	public static void main(String[] args) throws Exception {
		LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request();
		for (String name : args) {
			request.selectors(selectClass(Class.forName(name)));
		}
		LauncherDiscoveryRequest discovery = request.build();
		Launcher launcher = LauncherFactory.create();
		SummaryGeneratingListener listener = new SummaryGeneratingListener();
		launcher.execute(discovery, listener);
		TestExecutionSummary summary = listener.getSummary();
		PrintWriter out = new PrintWriter(System.out, true);
		summary.printTo(out);
		summary.printFailuresTo(out, 20);
		boolean ok = summary.getTotalFailureCount() == 0 && summary.getTestsSucceededCount() > 0;
		out.println(ok ? "RunTests: PASS" : "RunTests: FAIL");
		System.exit(ok ? 0 : 1);
	}
}
