package dev.blockserve.scheduler;

import java.util.ArrayList;
import java.util.List;

import dev.blockserve.kvcache.BlockPool;
import dev.blockserve.kvcache.KvCacheManager;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Scheduling decisions without a model: order, budgets, chunking, preemption. */
class SchedulerTest {

	static Sequence seq(long id, int promptLen, int priority, long arrival) {
		int[] p = new int[promptLen];
		for (int i = 0; i < p.length; i++) {
			p[i] = (int) (id * 1000 + i);
		}
		return new Sequence(id, p, priority, arrival);
	}

	/** Runs the step as the engine would: every scheduled sequence computes its tokens and samples if due. */
	static List<Long> step(Scheduler<Sequence> s) {
		SchedulerOutput<Sequence> out = s.schedule();
		List<Long> ids = new ArrayList<>();
		for (int i = 0; i < out.count(); i++) {
			Sequence q = out.seq(i);
			ids.add(q.id());
			q.advance(out.numNewTokens(i));
			s.commit(q);
			if (q.readyToSample()) {
				q.append(7);
			}
		}
		return ids;
	}

	@Test
	void fcfsServesRunningFirstThenAdmitsInArrivalOrderWithinBudgets() {
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
				new SchedulerConfig(2, 100, 0, SchedulerConfig.Policy.FCFS));
		s.addWaiting(seq(1, 5, 0, 1));
		s.addWaiting(seq(2, 5, 0, 2));
		s.addWaiting(seq(3, 5, 0, 3));
		assertThat(step(s)).containsExactly(1L, 2L); // max-num-seqs 2
		assertThat(s.numWaiting()).isEqualTo(1);
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.count()).isEqualTo(2);
		assertThat(out.numNewTokens(0)).as("a decode step brings one token").isEqualTo(1);
	}

	@Test
	void tokenBudgetAndLongPrefillThresholdChunkPrompts() {
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
				new SchedulerConfig(8, 10, 6, SchedulerConfig.Policy.FCFS));
		s.addWaiting(seq(1, 20, 0, 1));
		s.addWaiting(seq(2, 3, 0, 2));
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.count()).isEqualTo(2);
		assertThat(out.numNewTokens(0)).as("capped by the prefill threshold").isEqualTo(6);
		assertThat(out.numNewTokens(1)).as("the rest of the 10-token budget").isEqualTo(3);
		assertThat(out.totalTokens()).isLessThanOrEqualTo(10);
	}

	@Test
	void priorityPolicyAdmitsLowerValuesFirstArrivalBreakingTies() {
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
				new SchedulerConfig(1, 100, 0, SchedulerConfig.Policy.PRIORITY));
		s.addWaiting(seq(1, 3, 5, 1));
		s.addWaiting(seq(2, 3, 1, 2));
		s.addWaiting(seq(3, 3, 1, 3));
		assertThat(step(s)).containsExactly(2L);
	}

	@Test
	void outOfBlocksPreemptsTheLeastImportantRunningSequence() {
		// 6 blocks of 4: three 7-token prompts take 2 blocks each; growing needs a 3rd block each
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(6, 4), false, "m"),
				new SchedulerConfig(8, 100, 0, SchedulerConfig.Policy.PRIORITY));
		Sequence low = seq(1, 7, 9, 1);
		Sequence high = seq(2, 7, 0, 2);
		Sequence mid = seq(3, 7, 5, 3);
		s.addWaiting(low);
		s.addWaiting(high);
		s.addWaiting(mid);
		assertThat(step(s)).containsExactly(2L, 3L, 1L); // policy order, all admitted: 6 blocks used
		// each now has 8 tokens, 7 computed: the next step writes position 7 (block 2 still), fine
		assertThat(step(s)).hasSize(3);
		// position 8 needs a third block: the least important (priority 9) is preempted first
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.preempted()).isNotEmpty();
		assertThat(out.preempted().get(0).id()).isEqualTo(1L);
		assertThat(low.status()).isEqualTo(Sequence.Status.WAITING);
		assertThat(low.numComputed()).as("recomputed from scratch later").isZero();
		assertThat(s.preemptions()).isPositive();
		s.kv().checkInvariants();
	}
}
