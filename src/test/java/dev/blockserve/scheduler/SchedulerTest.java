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

	/** A scheduler over {@code blocks} blocks of 4 with a token budget, drafting up to 4 tokens by 1- and 2-grams. */
	static Scheduler<Sequence> speculating(int blocks, int budget, int maxBatch) {
		return new Scheduler<>(new KvCacheManager(new BlockPool(blocks, 4), false, "m"),
				new SchedulerConfig(8, budget, 0, SchedulerConfig.Policy.FCFS).withSpeculative(new SpeculativeConfig(4, 1, 2, maxBatch)));
	}

	/** A sequence that would speculate: its tokens repeat (with the 7 that {@link #step} appends), and room for 8 drafts. */
	static Sequence looping(long id) {
		return new Sequence(id, new int[] { 5, 7, 5, 7, 5, 7, 5 }, 0, id) {
			@Override
			public int maxDrafts() {
				return 8;
			}
		};
	}

	@Test
	void draftsTakeOnlyTheBlocksTheStepLeaves() {
		// 5 blocks of 4: two 7-token sequences hold 2 each; a decode fits in their second block, drafts do not
		Scheduler<Sequence> s = speculating(5, 100, 8);
		s.addWaiting(looping(1));
		s.addWaiting(looping(2));
		step(s); // the prompts, then one token each: 8 tokens, all but the last computed
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.count()).isEqualTo(2);
		Sequence first = out.seq(0);
		assertThat(out.numNewTokens(0)).as("the last token and 4 drafts, in the one free block").isEqualTo(5);
		assertThat(first.numDrafts()).isEqualTo(4);
		assertThat(java.util.Arrays.copyOfRange(first.tokens(), first.numTokens(), first.numTokens() + 4))
			.as("the loop continued").containsExactly(5, 7, 5, 7);
		assertThat(out.numNewTokens(1)).as("no block left for drafts: the decode token alone").isEqualTo(1);
		assertThat(out.seq(1).numDrafts()).isZero();
		assertThat(s.preemptions()).as("drafts never cost another sequence its blocks").isZero();
	}

	@Test
	void draftsTakeOnlyTheTokenBudgetThatAdmissionsLeave() {
		Scheduler<Sequence> s = speculating(50, 10, 8);
		s.addWaiting(looping(1));
		step(s);
		s.addWaiting(seq(2, 7, 0, 2));
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.numNewTokens(0)).as("decode: the 7-token prompt was admitted first, 2 tokens were left").isEqualTo(3);
		assertThat(out.numNewTokens(1)).isEqualTo(7);
		assertThat(out.totalTokens()).isEqualTo(10);
	}

	@Test
	void noDraftsAboveTheBatchLimitOrForSequencesThatMayNotSpeculate() {
		Scheduler<Sequence> s = speculating(50, 100, 1);
		s.addWaiting(looping(1));
		s.addWaiting(looping(2));
		s.addWaiting(new Sequence(3, new int[] { 5, 7, 5, 7, 5 }, 0, 3)); // maxDrafts() 0
		step(s);
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.totalTokens()).as("three sequences running, the limit is one: plain decodes").isEqualTo(3);
		Scheduler<Sequence> alone = speculating(50, 100, 1);
		alone.addWaiting(new Sequence(3, new int[] { 5, 7, 5, 7, 5 }, 0, 3));
		step(alone);
		assertThat(alone.schedule().totalTokens()).as("a sequence that may not speculate").isEqualTo(1);
	}
}
