package dev.blockserve.backend;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Runs native work that does not belong to the engine thread (loading and converting weights, the
 * start-up warm-up) on a thread that ends with it. libgomp keeps a team of worker threads for every
 * thread that ever opened a parallel region, for as long as that thread lives; with a second team alive
 * on 2 cores it counts more threads than CPUs and stops spinning at barriers, so each of the engine's
 * ~250 parallel regions a step pays a futex wake-up. Measured on a 2-core EPYC: a server whose warm-up
 * ran on the start-up thread decoded 20-25% slower for its whole life, one that converted F32 weights
 * to BF16 there about 10% slower. A team is released when its thread exits.
 * Thread: the caller's, which waits.
 */
public final class TransientThread {

	private TransientThread() {
	}

	/** Runs {@code work} on a new thread named {@code name} and returns its result or rethrows its failure. */
	public static <T> T call(String name, Supplier<T> work) {
		AtomicReference<T> result = new AtomicReference<>();
		AtomicReference<Throwable> failure = new AtomicReference<>();
		Thread t = new Thread(() -> {
			try {
				result.set(work.get());
			}
			catch (Throwable e) {
				failure.set(e);
			}
		}, name);
		t.start();
		boolean interrupted = false;
		while (true) {
			try {
				t.join();
				break;
			}
			catch (InterruptedException e) {
				interrupted = true; // the work cannot be abandoned half done: wait, then restore the flag
			}
		}
		if (interrupted) {
			Thread.currentThread().interrupt();
		}
		Throwable e = failure.get();
		if (e instanceof RuntimeException r) {
			throw r;
		}
		if (e instanceof Error err) {
			throw err;
		}
		if (e != null) {
			throw new IllegalStateException(e);
		}
		return result.get();
	}
}
