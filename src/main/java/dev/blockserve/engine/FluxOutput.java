package dev.blockserve.engine;

import reactor.core.publisher.Sinks;

/**
 * Delivers one request's output to a Reactor sink, which buffers what the subscriber has not requested
 * yet, and gives the request's place in the waiting queue back once, when it first runs or ends. Called
 * on the engine thread; the sink's Flux is read on the subscriber's.
 */
final class FluxOutput implements RequestOutput {

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
		sink.tryEmitNext(e);
	}

	@Override
	public void complete() {
		release();
		sink.tryEmitComplete();
	}

	@Override
	public void fail(EngineException e) {
		release();
		sink.tryEmitError(e);
	}

	/** Gives the place back if the request never reached the engine thread (refused there). */
	void release() {
		if (!released) {
			released = true;
			admission.release(promptTokens);
		}
	}
}
