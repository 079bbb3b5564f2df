package dev.blockserve.engine;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Sinks;

/**
 * Delivers one request's output to a Reactor sink, which buffers what the subscriber has not requested
 * yet, and gives the request's place in the waiting queue back once, when it first runs or ends. Called
 * on the engine thread; the sink's Flux is read on the subscriber's.
 */
final class FluxOutput implements RequestOutput {

	private static final Logger log = LoggerFactory.getLogger(FluxOutput.class);

	final Sinks.Many<GenerationEvent> sink = Sinks.many().unicast().onBackpressureBuffer();

	private final Admission admission;

	private final int promptTokens;

	private boolean released;

	FluxOutput(Admission admission, int promptTokens) {
		this.admission = admission;
		this.promptTokens = promptTokens;
	}

	@Override
	public void scheduled() {
		release();
	}

	@Override
	public void event(GenerationEvent e) {
		check(sink.tryEmitNext(e), "an event");
	}

	@Override
	public void complete() {
		release();
		check(sink.tryEmitComplete(), "the completion");
	}

	@Override
	public void fail(EngineException e) {
		release();
		check(sink.tryEmitError(e), "the error");
	}

	/** A refused emission would lose output silently: say so (a cancelled stream refuses by design). */
	private static void check(Sinks.EmitResult r, String what) {
		if (r.isFailure() && r != Sinks.EmitResult.FAIL_CANCELLED) {
			log.warn("A request's output refused {}: {}", what, r);
		}
	}

	/** Gives the place back if the request never reached the engine thread (refused there). */
	void release() {
		if (!released) {
			released = true;
			admission.release(promptTokens);
		}
	}
}
