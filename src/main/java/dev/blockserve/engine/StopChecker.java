package dev.blockserve.engine;

import java.util.List;

/**
 * Stop strings over streamed text: finds a stop string even when it spans token boundaries, and holds
 * back the last characters that could still become the start of one, so a stop string never reaches
 * the client. The accumulated text is kept; {@link #release} hands out what is safe to send.
 * One per sequence; owned by the engine thread.
 */
final class StopChecker {

	private final List<String> stops;

	private final int hold;

	/** vLLM's include_stop_str_in_output: the text is cut after the stop string instead of before it. */
	private final boolean keepStop;

	private final StringBuilder text = new StringBuilder();

	private int sent;

	private boolean stopped;

	StopChecker(List<String> stops) {
		this(stops, false);
	}

	StopChecker(List<String> stops, boolean keepStop) {
		this.stops = stops;
		this.keepStop = keepStop;
		int max = 0;
		for (String s : stops) {
			max = Math.max(max, s.length());
		}
		this.hold = Math.max(0, max - 1);
	}

	/** Appends a delta; returns true if a stop string is now complete (the text is cut before it). */
	boolean append(String delta) {
		return append(delta, true);
	}

	/**
	 * As {@link #append(String)}; with {@code check} false (min_tokens not reached) the delta is kept but not
	 * searched, and a later search starts where this one would have.
	 */
	boolean append(String delta, boolean check) {
		if (stopped || delta.isEmpty()) {
			return stopped;
		}
		int searchFrom = Math.max(0, text.length() - hold);
		text.append(delta);
		if (!check) {
			return false;
		}
		int best = -1;
		int bestLength = 0;
		for (String s : stops) {
			int at = text.indexOf(s, searchFrom);
			if (at >= 0 && (best < 0 || at < best)) {
				best = at;
				bestLength = s.length();
			}
		}
		if (best >= 0) {
			text.setLength(keepStop ? best + bestLength : best);
			stopped = true;
		}
		return stopped;
	}

	/** Text that can be sent now: all of it once {@code finished}, else all but the held-back tail. */
	String release(boolean finished) {
		int end = finished || stopped ? text.length() : Math.max(sent, text.length() - hold);
		String out = text.substring(sent, end);
		sent = end;
		return out;
	}

	String text() {
		return text.toString();
	}
}
