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
	void aPromptBudgetLeavesDecodesOutOfItSoAPromptThatFitsIsNotSplit() {
		// 3 decoding sequences; then two 8-token prompts arrive. Budget 16 tokens in all: the decodes leave 13 and the
		// second prompt is split. With 16 prompt tokens a step besides decodes (total 19) both prompts finish at once.
		for (int promptBudget : new int[] { 0, 16 }) {
			Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
					new SchedulerConfig(8, promptBudget == 0 ? 16 : 19, 16, SchedulerConfig.Policy.FCFS)
						.withMaxPrefillTokens(promptBudget));
			for (int id = 1; id <= 3; id++) {
				s.addWaiting(seq(id, 2, 0, id));
			}
			step(s); // the three 2-token prompts; they decode from now on
			s.addWaiting(seq(4, 8, 0, 4));
			s.addWaiting(seq(5, 8, 0, 5));
			SchedulerOutput<Sequence> out = s.schedule();
			assertThat(out.count()).isEqualTo(5);
			assertThat(out.numNewTokens(0) + out.numNewTokens(1) + out.numNewTokens(2)).as("three decodes").isEqualTo(3);
			assertThat(out.numNewTokens(3)).isEqualTo(8);
			assertThat(out.numNewTokens(4)).as("prompt budget " + promptBudget).isEqualTo(promptBudget == 0 ? 5 : 8);
		}
	}

	@Test
	void thePromptBudgetIsConfiguredAndChecked() {
		SchedulerConfig cpu = SchedulerConfig.cpuDefaults();
		assertThat(cpu.maxPrefillTokens()).isEqualTo(128);
		assertThat(cpu.maxNumBatchedTokens()).as("room for every decode besides the prompt tokens")
			.isGreaterThanOrEqualTo(cpu.maxPrefillTokens() + cpu.maxNumSeqs());
		assertThat(SchedulerConfig.gpuDefaults().maxPrefillTokens()).isZero();
		var props = new dev.blockserve.config.BlockserveProperties.Scheduler(null, null, null, 100, "fcfs");
		assertThat(props.toConfig(cpu).maxPrefillTokens()).isEqualTo(100);
		assertThat(new dev.blockserve.config.BlockserveProperties.Scheduler(null, null, null, null, "fcfs").toConfig(cpu))
			.isEqualTo(cpu);
		assertThat(cpu.withSpeculative(new SpeculativeConfig(3, 2, 4, 4)).maxPrefillTokens()).isEqualTo(128);
		org.assertj.core.api.Assertions.assertThatThrownBy(() -> cpu.withMaxPrefillTokens(-1))
			.hasMessageContaining("blockserve.scheduler.max-prefill-tokens must be >= 0");
	}

	@Test
	void thePromptBudgetCapsAdmissionsWhileDecodesRun() {
		// prompt budget 6, chunks of 6: sequence 1's 14-token prompt takes the step's prompt tokens, sequence 3
		// waits, and sequence 2 decodes all the same
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
				new SchedulerConfig(8, 100, 6, SchedulerConfig.Policy.FCFS).withMaxPrefillTokens(6));
		s.addWaiting(seq(2, 1, 0, 0));
		step(s); // sequence 2: its one-token prompt, then it decodes
		s.addWaiting(seq(1, 14, 0, 1));
		s.addWaiting(seq(3, 4, 0, 3));
		for (int k = 0; k < 3; k++) {
			SchedulerOutput<Sequence> out = s.schedule();
			assertThat(out.count()).as("step %d: 2 decodes, 1 brings a chunk, 3 waits until 1's prompt ends", k)
				.isEqualTo(k < 2 ? 2 : 3);
			assertThat(out.seq(0).id()).isEqualTo(2L);
			assertThat(out.numNewTokens(0)).isEqualTo(1);
			assertThat(out.seq(1).id()).isEqualTo(1L);
			assertThat(out.numNewTokens(1)).isEqualTo(k < 2 ? 6 : 2);
			assertThat(s.numWaiting()).isEqualTo(k < 2 ? 1 : 0);
			if (k == 2) {
				assertThat(out.numNewTokens(2)).as("what the prompt budget has left").isEqualTo(4);
			}
			step(s);
		}
	}

	@Test
	void withNothingDecodingAPromptGoesInChunksOfTheThreshold() {
		// prompt budget 4, threshold 8: a lone 20-token prompt takes 8 a step; once it decodes, the next prompt 4
		Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(100, 4), false, "m"),
				new SchedulerConfig(8, 100, 8, SchedulerConfig.Policy.FCFS).withMaxPrefillTokens(4));
		s.addWaiting(seq(1, 20, 0, 1));
		for (int expected : new int[] { 8, 8, 4 }) {
			SchedulerOutput<Sequence> out = s.schedule();
			assertThat(out.count()).isEqualTo(1);
			assertThat(out.numNewTokens(0)).isEqualTo(expected);
			step(s);
		}
		s.addWaiting(seq(2, 20, 0, 2));
		SchedulerOutput<Sequence> out = s.schedule();
		assertThat(out.count()).isEqualTo(2);
		assertThat(out.numNewTokens(0)).as("a decode").isEqualTo(1);
		assertThat(out.numNewTokens(1)).as("the prompt budget, sequence 1 decoding").isEqualTo(4);
	}

	/**
	 * Random arrivals, budgets and pool sizes, preemption included: no step exceeds the token budget, the prompt
	 * budget or the sequence budget; while nothing is preempted every decoding sequence runs each step (the
	 * budget leaves room for all of them besides the prompt tokens); and every sequence finishes.
	 */
	@Test
	void budgetsHoldAndEverySequenceFinishesUnderRandomArrivals() {
		dev.blockserve.support.Property.forAll("scheduler budgets", 300, 14L, r -> {
			List<List<Integer>> ops = new ArrayList<>();
			// setup: max seqs, prompt budget (0 = none), chunk threshold, pool blocks
			ops.add(List.of(1 + r.nextInt(6), r.nextInt(3) == 0 ? 0 : 1 + r.nextInt(12), r.nextInt(9), 12 + r.nextInt(30)));
			int n = 1 + r.nextInt(12);
			for (int i = 0; i < n; i++) {
				ops.add(List.of(1 + r.nextInt(24), 1 + r.nextInt(5), r.nextInt(3))); // prompt, outputs, arrival period
			}
			return ops;
		}, ops -> {
			int[] setup = ops.get(0).stream().mapToInt(Integer::intValue).toArray();
			int maxSeqs = setup[0];
			int promptBudget = setup[1];
			int budget = promptBudget > 0 ? promptBudget + maxSeqs : 1 + maxSeqs + 12;
			Scheduler<Sequence> s = new Scheduler<>(new KvCacheManager(new BlockPool(setup[3], 4), false, "m"),
					new SchedulerConfig(maxSeqs, budget, setup[2], SchedulerConfig.Policy.FCFS)
						.withMaxPrefillTokens(promptBudget));
			java.util.Map<Sequence, Integer> outputs = new java.util.HashMap<>();
			int next = 1;
			int finished = 0;
			for (int stepNo = 0; stepNo < 2000 && finished < ops.size() - 1; stepNo++) {
				while (next < ops.size() && (ops.get(next).get(2) == 0 || stepNo % ops.get(next).get(2) == 0)) {
					int[] op = ops.get(next).stream().mapToInt(Integer::intValue).toArray();
					Sequence q = seq(next, op[0], 0, next);
					if (op[0] + op[1] > 4 * setup[3]) {
						finished++; // would never fit the pool
					}
					else {
						outputs.put(q, op[1]);
						s.addWaiting(q);
					}
					next++;
				}
				List<Sequence> decoding = new ArrayList<>();
				for (Sequence q : outputs.keySet()) {
					if (q.status() == Sequence.Status.RUNNING && q.numTokens() - q.numComputed() == 1) {
						decoding.add(q);
					}
				}
				SchedulerOutput<Sequence> out = s.schedule();
				assertThat(out.totalTokens()).isLessThanOrEqualTo(budget);
				assertThat(out.count()).isLessThanOrEqualTo(maxSeqs);
				int prompt = 0;
				List<Sequence> scheduled = new ArrayList<>();
				for (int i = 0; i < out.count(); i++) {
					Sequence q = out.seq(i);
					scheduled.add(q);
					if (q.numTokens() - q.numComputed() > 1) {
						prompt += out.numNewTokens(i);
					}
				}
				if (promptBudget > 0 && !decoding.isEmpty()) {
					assertThat(prompt).as("prompt tokens while sequences decode").isLessThanOrEqualTo(promptBudget);
				}
				if (out.preempted().isEmpty()) {
					assertThat(scheduled).as("decoding sequences all run").containsAll(decoding);
				}
				for (int i = 0; i < out.count(); i++) {
					Sequence q = out.seq(i);
					q.advance(out.numNewTokens(i));
					s.commit(q);
					if (q.readyToSample()) {
						q.append(7);
						if (q.numOutputTokens() >= outputs.get(q)) {
							s.remove(q);
							finished++;
						}
					}
				}
			}
			assertThat(finished).as("every sequence finishes").isEqualTo(ops.size() - 1);
			assertThat(s.hasWork()).isFalse();
		});
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
