package dev.blockserve.api;

/**
 * How far one exchange's stream got, for the stop's log when a stream did not finish: the engine events it
 * read, the events it handed to the HTTP writer and the events the writer asked for. Together they say where
 * a stalled stream waits: events asked for but not handed, with the engine done, mean the stream's operators
 * hold them; none asked for beyond those handed means the writer stopped asking. Put in the exchange's
 * Reactor context by {@link InFlightExchanges}; written by the stream's threads (the engine thread, the
 * event loop), read by the stopping thread: plain fields, so a count read there may lag by a few, and
 * nothing per token but an increment.
 */
public final class StreamProgress {

	int read;

	int handed;

	long asked;

	boolean ended;

	void asked(long n) {
		asked = reactor.core.publisher.Operators.addCap(asked, n);
	}

	/** Whether a stream ran in this exchange (a plain answer has none). */
	boolean streamed() {
		return asked > 0 || read > 0;
	}

	@Override
	public String toString() {
		return read + " engine events read, " + handed + " events handed to the writer of "
				+ (asked == Long.MAX_VALUE ? "unbounded" : asked) + " it asked for, " + (ended ? "ended" : "not ended");
	}
}
