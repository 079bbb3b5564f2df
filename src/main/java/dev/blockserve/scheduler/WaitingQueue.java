package dev.blockserve.scheduler;

import java.util.ArrayDeque;
import java.util.Comparator;
import java.util.PriorityQueue;
import java.util.Queue;

/**
 * The sequences waiting for admission, in the order the policy admits them. A preempted sequence goes
 * back with {@link #prepend}: under FCFS to the head (it arrived before everything still waiting),
 * under priority to its place in the order. Owned by the scheduler's thread, like the scheduler.
 */
abstract class WaitingQueue<S extends Sequence> {

	private final Queue<S> q;

	private WaitingQueue(Queue<S> q) {
		this.q = q;
	}

	static <S extends Sequence> WaitingQueue<S> of(SchedulerConfig.Policy policy, Comparator<Sequence> order) {
		return policy == SchedulerConfig.Policy.FCFS ? new Fcfs<>() : new Ordered<>(order);
	}

	/** Returns a preempted sequence to the queue ahead of the sequences that arrived after it. */
	abstract void prepend(S s);

	final void add(S s) {
		q.add(s);
	}

	final S peek() {
		return q.peek();
	}

	final S poll() {
		return q.poll();
	}

	final boolean remove(S s) {
		return q.remove(s);
	}

	final int size() {
		return q.size();
	}

	final boolean isEmpty() {
		return q.isEmpty();
	}

	/** Arrival order; a preempted sequence is older than every waiting one, so it goes first. */
	private static final class Fcfs<S extends Sequence> extends WaitingQueue<S> {

		private final ArrayDeque<S> deque;

		Fcfs() {
			this(new ArrayDeque<>());
		}

		private Fcfs(ArrayDeque<S> deque) {
			super(deque);
			this.deque = deque;
		}

		@Override
		void prepend(S s) {
			deque.addFirst(s);
		}
	}

	/** Policy order (priority, then arrival); the order itself puts a preempted sequence back in place. */
	private static final class Ordered<S extends Sequence> extends WaitingQueue<S> {

		Ordered(Comparator<Sequence> order) {
			super(new PriorityQueue<>(order));
		}

		@Override
		void prepend(S s) {
			add(s);
		}
	}
}
