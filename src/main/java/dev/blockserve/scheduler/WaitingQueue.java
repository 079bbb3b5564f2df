package dev.blockserve.scheduler;

import java.util.ArrayDeque;
import java.util.Comparator;
import java.util.PriorityQueue;

/**
 * The sequences waiting for admission, in the order the policy admits them. A preempted sequence goes
 * back with {@link #prepend}: under FCFS to the head (it arrived before everything still waiting),
 * under priority to its place in the order. Owned by the scheduler's thread, like the scheduler.
 */
interface WaitingQueue<S extends Sequence> {

	void add(S s);

	/** Returns a preempted sequence to the queue ahead of the sequences that arrived after it. */
	void prepend(S s);

	S peek();

	S poll();

	boolean remove(S s);

	int size();

	default boolean isEmpty() {
		return size() == 0;
	}

	static <S extends Sequence> WaitingQueue<S> of(SchedulerConfig.Policy policy, Comparator<Sequence> order) {
		return policy == SchedulerConfig.Policy.FCFS ? new Fcfs<>() : new Ordered<>(order);
	}

	/** Arrival order; a preempted sequence is older than every waiting one, so it goes first. */
	final class Fcfs<S extends Sequence> implements WaitingQueue<S> {

		private final ArrayDeque<S> q = new ArrayDeque<>();

		@Override
		public void add(S s) {
			q.addLast(s);
		}

		@Override
		public void prepend(S s) {
			q.addFirst(s);
		}

		@Override
		public S peek() {
			return q.peekFirst();
		}

		@Override
		public S poll() {
			return q.pollFirst();
		}

		@Override
		public boolean remove(S s) {
			return q.remove(s);
		}

		@Override
		public int size() {
			return q.size();
		}
	}

	/** Policy order (priority, then arrival); the order itself puts a preempted sequence back in place. */
	final class Ordered<S extends Sequence> implements WaitingQueue<S> {

		private final PriorityQueue<S> q;

		Ordered(Comparator<Sequence> order) {
			this.q = new PriorityQueue<>(order);
		}

		@Override
		public void add(S s) {
			q.add(s);
		}

		@Override
		public void prepend(S s) {
			q.add(s);
		}

		@Override
		public S peek() {
			return q.peek();
		}

		@Override
		public S poll() {
			return q.poll();
		}

		@Override
		public boolean remove(S s) {
			return q.remove(s);
		}

		@Override
		public int size() {
			return q.size();
		}
	}
}
