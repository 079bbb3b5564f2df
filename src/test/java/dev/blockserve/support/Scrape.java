package dev.blockserve.support;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads a Prometheus text scrape in tests. Stateless. */
public final class Scrape {

	private Scrape() {
	}

	/** The sum of every series of metric {@code name} (all label sets) in {@code scrape}; 0 when absent. */
	public static double sum(String scrape, String name) {
		Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\{[^}]*\\} ([0-9.eE+-]+)$").matcher(scrape);
		double sum = 0;
		while (m.find()) {
			sum += Double.parseDouble(m.group(1));
		}
		return sum;
	}

}
