package dev.blockserve.scheduler;

import java.util.concurrent.TimeUnit;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import dev.blockserve.model.StepInput;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Cost of one engine step outside the forward pass with 256 running sequences: schedule (allocation,
 * copy-on-write checks, admission with prefix matching), build the step input, and the per-sequence
 * bookkeeping after the step (advance, append, register full blocks). Sequences finish after 256 new
 * tokens and are replaced by new ones, so the benchmark runs a steady state, not a warm-up.
 * Run: {@code java -cp <test classpath> org.openjdk.jmh.Main SchedulerBenchmark -f 1 -wi 3 -i 5 -w 1s -r 1s}
 */
@State(Scope.Thread)
public class SchedulerBenchmark {

	private static final int RUNNING = 256;

	private KvCacheManager kv;

	private Scheduler<Sequence> scheduler;

	private final StepInput step = new StepInput();

	private long nextId;

	private int[] prompt;

	@Setup
	public void setup() {
		kv = new KvCacheManager(new BlockPool(100_000, 16), true, "bench");
		scheduler = new Scheduler<>(kv, new SchedulerConfig(RUNNING, 8192, 2048, SchedulerConfig.Policy.FCFS));
		prompt = new int[64];
		for (int i = 0; i < RUNNING; i++) {
			add();
		}
		for (int i = 0; i < 600; i++) {
			step();
		}
	}

	private void add() {
		long id = nextId++;
		for (int i = 0; i < prompt.length; i++) {
			prompt[i] = (int) ((i < 32 ? i : id * 31 + i) % 49152); // a shared 32-token system prompt
		}
		scheduler.addWaiting(new Sequence(id, prompt, 0, id));
	}

	@Benchmark
	@BenchmarkMode(Mode.AverageTime)
	@OutputTimeUnit(TimeUnit.MICROSECONDS)
	public int step() {
		SchedulerOutput<Sequence> out = scheduler.schedule();
		step.reset(16, 128);
		for (int i = 0; i < out.count(); i++) {
			Sequence s = out.seq(i);
			step.addSequence(s.tokens, s.numComputed, out.numNewTokens(i), s.table);
		}
		int finished = 0;
		for (int i = 0; i < out.count(); i++) {
			Sequence s = out.seq(i);
			s.advance(out.numNewTokens(i));
			scheduler.commit(s);
			if (s.readyToSample()) {
				s.append((int) (s.id * 7 + s.numTokens) % 49152);
				if (s.numOutputTokens() >= 256) {
					scheduler.remove(s);
					finished++;
				}
			}
		}
		for (int i = 0; i < finished; i++) {
			add();
		}
		return out.count();
	}
}
