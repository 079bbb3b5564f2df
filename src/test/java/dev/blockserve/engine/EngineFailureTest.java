package dev.blockserve.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import dev.blockserve.backend.CpuBackend;
import dev.blockserve.scheduler.SchedulerConfig;
import dev.blockserve.support.EngineProbes;
import dev.blockserve.support.SeedFaults;
import dev.blockserve.support.SharedModels;
import dev.blockserve.support.SharedModels.GoldenCase;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import reactor.core.publisher.Flux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * How the engine fails: a fault in one sequence's output ends that request alone; a failed forward pass
 * fails the batch and the engine serves the next request; a stalled step and a VM error make it report
 * down and refuse requests; the waiting queue's bound refuses the excess; a deadline ends a request.
 * Faults come from the {@link FaultInjector} hook, keyed by each request's seed.
 */
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class EngineFailureTest {

	static CpuBackend backend;

	@BeforeAll
	static void open() {
		backend = new CpuBackend(0);
	}

	@AfterAll
	static void close() {
		backend.close();
	}

	static Engine engine(ModelRuntime rt, int maxWaiting, Duration stall) {
		return new Engine(rt, new EngineConfig(SchedulerConfig.cpuDefaults(), false, maxWaiting, 0, stall), null);
	}

	static ModelRuntime runtime() {
		return new ModelRuntime(SharedModels.dir("stories260K"), backend, 0, 16, 512, 0);
	}

	static SamplingParams golden(long seed) {
		return SamplingParams.greedy(96).toBuilder().seed(seed).build();
	}

	static List<Integer> ids(Flux<GenerationEvent> f) {
		List<Integer> out = new ArrayList<>();
		for (GenerationEvent e : f.collectList().block(Duration.ofSeconds(60))) {
			for (int t : e.tokenIds()) {
				out.add(t);
			}
		}
		return out;
	}

	static List<Integer> list(int[] a) {
		List<Integer> l = new ArrayList<>();
		for (int x : a) {
			l.add(x);
		}
		return l;
	}

	@Test
	void aFaultInOneSequencesOutputFailsThatRequestAlone() throws Exception {
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 0, Duration.ofMinutes(1))) {
			engine.faults(new SeedFaults());
			List<GoldenCase> cases = SharedModels.golden("stories260K");
			List<Flux<GenerationEvent>> good = new ArrayList<>();
			List<Flux<GenerationEvent>> bad = new ArrayList<>();
			for (int round = 0; round < 2; round++) {
				for (GoldenCase c : cases) {
					good.add(engine.submit(c.promptIds(), golden(7), 0).events());
				}
				for (long s = 1001; s <= 1003; s++) {
					bad.add(engine.submit(cases.get(0).promptIds(), golden(s), 0).events());
				}
			}
			for (int i = 0; i < good.size(); i++) {
				assertThat(ids(good.get(i))).as("golden request %d", i).isEqualTo(list(cases.get(i % cases.size()).greedyIds()));
			}
			String[] stages = { "SAMPLE", "DETOKENIZE", "STOP_CHECK" };
			for (int i = 0; i < bad.size(); i++) {
				Flux<GenerationEvent> f = bad.get(i);
				assertThatThrownBy(() -> f.blockLast(Duration.ofSeconds(60))).isInstanceOf(EngineException.class)
					.hasMessageContaining("injected " + stages[i % 3] + " fault");
			}
			assertThat(EngineProbes.usedBlocks(engine)).isZero();
			EngineProbes.checkInvariants(engine);
			assertThat(engine.downReason()).isNull();
		}
	}

	@Test
	void aFailedForwardPassFailsTheBatchAndTheEngineServesTheNextRequest() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(1);
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 0, Duration.ofMinutes(1))) {
			AtomicInteger forwards = new AtomicInteger();
			engine.faults((stage, prompt, params) -> {
				if (stage == FaultInjector.Stage.FORWARD && forwards.incrementAndGet() == 3) {
					throw new IllegalStateException("injected forward failure");
				}
			});
			Flux<GenerationEvent> victim = engine.submit(c.promptIds(), golden(1), 0).events();
			assertThatThrownBy(() -> victim.blockLast(Duration.ofSeconds(60))).hasMessageContaining("injected forward failure");
			assertThat(ids(engine.submit(c.promptIds(), golden(1), 0).events())).isEqualTo(list(c.greedyIds()));
			assertThat(EngineProbes.usedBlocks(engine)).isZero();
		}
	}

	@Test
	void aStalledStepReportsDownAndRefusesRequestsUntilItMoves() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 0, Duration.ofMillis(300))) {
			java.util.concurrent.atomic.AtomicBoolean stalled = new java.util.concurrent.atomic.AtomicBoolean();
			engine.faults((stage, prompt, params) -> {
				if (stage == FaultInjector.Stage.FORWARD && stalled.compareAndSet(false, true)) {
					sleep(1500);
				}
			});
			Flux<GenerationEvent> slow = engine.submit(c.promptIds(), golden(1), 0).events();
			Thread.sleep(900);
			assertThat(engine.downReason()).contains("stalled");
			assertThatThrownBy(() -> engine.submit(c.promptIds(), golden(1), 0)).isInstanceOf(EngineUnavailableException.class)
				.satisfies(e -> assertThat(((EngineUnavailableException) e).overloaded()).isFalse());
			assertThat(ids(slow)).isEqualTo(list(c.greedyIds()));
			assertThat(engine.downReason()).isNull();
		}
	}

	/**
	 * A stop that outwaits a stuck step leaves the model's memory to it: the step, when it moves again, runs on
	 * live weights and KV cache, and its request ends as the stop ends requests. Before, the close freed the
	 * memory under the step (the server closes the runtime's bean right after the engine's).
	 */
	@Test
	void aCloseThatOutwaitsAStuckStepLeavesTheModelsMemoryToTheStep() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		ModelRuntime rt = runtime();
		Engine engine = engine(rt, 0, Duration.ofMinutes(1));
		java.util.concurrent.CountDownLatch inStep = new java.util.concurrent.CountDownLatch(1);
		java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
		AtomicInteger forwards = new AtomicInteger();
		engine.faults((stage, prompt, params) -> {
			if (stage == FaultInjector.Stage.FORWARD && forwards.incrementAndGet() == 2) {
				inStep.countDown();
				try {
					release.await();
				}
				catch (InterruptedException e) {
					Thread.currentThread().interrupt();
				}
			}
		});
		AtomicReference<Throwable> ended = new AtomicReference<>();
		java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
		engine.submit(c.promptIds(), golden(1), 0).events().subscribe(e -> {
		}, t -> {
			ended.set(t);
			done.countDown();
		}, done::countDown);
		assertThat(inStep.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
		engine.close(Duration.ofMillis(200)); // gives up waiting: the step is stuck
		rt.close(); // as the server closes the runtime's bean next
		release.countDown(); // the step goes on, on the model's memory
		assertThat(done.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
		assertThat(ended.get()).hasMessageContaining("shutting down").hasRootCauseInstanceOf(EngineUnavailableException.class);
	}

	@Test
	void aVmErrorOnTheEngineThreadMarksItDownAndCallsTheFatalHandler() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 0, Duration.ofMinutes(1))) {
			AtomicReference<Throwable> fatal = new AtomicReference<>();
			engine.onFatal(fatal::set);
			engine.faults((stage, prompt, params) -> {
				if (stage == FaultInjector.Stage.FORWARD) {
					throw new OutOfMemoryError("injected");
				}
			});
			Flux<GenerationEvent> f = engine.submit(c.promptIds(), golden(1), 0).events();
			assertThatThrownBy(() -> f.blockLast(Duration.ofSeconds(30))).hasMessageContaining("injected");
			assertThat(fatal.get()).isInstanceOf(OutOfMemoryError.class);
			assertThat(engine.downReason()).contains("failed");
			assertThatThrownBy(() -> engine.submit(c.promptIds(), golden(1), 0)).isInstanceOf(EngineUnavailableException.class);
		}
	}

	@Test
	void theWaitingQueueBoundRefusesTheExcessAndGivesPlacesBack() throws Exception {
		GoldenCase c = SharedModels.golden("stories260K").get(0);
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 2, Duration.ofMinutes(1))) {
			// slow the engine thread so submissions stay waiting
			java.util.concurrent.atomic.AtomicBoolean hold = new java.util.concurrent.atomic.AtomicBoolean(true);
			engine.faults((stage, prompt, params) -> {
				if (stage == FaultInjector.Stage.FORWARD && hold.get()) {
					sleep(50);
				}
			});
			List<Flux<GenerationEvent>> admitted = new ArrayList<>();
			int refused = 0;
			for (int i = 0; i < 10; i++) {
				try {
					admitted.add(engine.submit(c.promptIds(), golden(1), 0).events());
				}
				catch (EngineUnavailableException e) {
					assertThat(e.overloaded()).isTrue();
					assertThat(e.retryAfterSeconds()).isPositive();
					refused++;
				}
			}
			hold.set(false);
			assertThat(refused).as("refused of 10 with a queue of 2").isPositive();
			for (Flux<GenerationEvent> f : admitted) {
				assertThat(ids(f)).isEqualTo(list(c.greedyIds()));
			}
			// every place was given back: a new burst is admitted again
			assertThat(ids(engine.submit(c.promptIds(), golden(1), 0).events())).isEqualTo(list(c.greedyIds()));
		}
	}

	@Test
	void aRequestPastItsDeadlineEndsWithATimeoutAndFreesItsBlocks() throws Exception {
		try (ModelRuntime rt = runtime(); Engine engine = engine(rt, 0, Duration.ofMinutes(1))) {
			SamplingParams forever = SamplingParams.greedy(480).toBuilder().ignoreEos(true).build();
			engine.faults((stage, prompt, params) -> {
				if (stage == FaultInjector.Stage.FORWARD) {
					sleep(5); // a slower model, so 480 tokens take longer than the deadline
				}
			});
			List<GenerationEvent> seen = new ArrayList<>();
			Flux<GenerationEvent> f = engine.submit(new int[] { 1, 2, 3 }, forever, 0, Duration.ofMillis(400)).events();
			assertThatThrownBy(() -> f.doOnNext(seen::add).blockLast(Duration.ofSeconds(30)))
				.isInstanceOf(RequestTimeoutException.class)
				.hasMessageContaining("deadline");
			assertThat(seen).isNotEmpty();
			assertThat(seen.get(seen.size() - 1).completionTokens()).isLessThan(480);
			assertThat(EngineProbes.usedBlocks(engine)).as("blocks after the deadline").isZero();
		}
	}

	static void sleep(long ms) {
		try {
			Thread.sleep(ms);
		}
		catch (InterruptedException e) {
			Thread.currentThread().interrupt();
		}
	}
}
