package dev.blockserve.constraint;

/**
 * Where one sequence stands in its grammar. Advancing costs one memoised transition per byte of the
 * token; {@link #mask} gives the tokens allowed next. A fork ({@code n > 1}) starts from its
 * parent's state. The state depends only on the tokens generated, so preemption by recompute (which
 * keeps them) leaves it valid. Owned by the engine thread.
 */
public final class GrammarMatcher {

	private final GrammarRuntime rt;

	private int state;

	GrammarMatcher(GrammarRuntime rt, int state) {
		this.rt = rt;
		this.state = state;
	}

	/**
	 * Advances over {@code token}. EOS is accepted where the grammar may end, and leaves the state as it
	 * is. @return false, with the state unchanged, when the grammar rejects the token
	 */
	public boolean accept(int token) {
		if (rt.isEos(token)) {
			return rt.accepting(state);
		}
		byte[] b = rt.vocab.bytes(token);
		if (b == null) {
			return false;
		}
		int s = state;
		for (byte x : b) {
			s = rt.next(s, x & 0xff);
			if (s == GrammarRuntime.DEAD) {
				return false;
			}
		}
		state = s;
		return true;
	}

	/**
	 * The tokens allowed next, one bit each ({@link GrammarRuntime#maskWords()} longs). The array belongs to
	 * the runtime's mask cache: read it, never write it.
	 */
	public long[] mask() {
		return rt.mask(state);
	}

	/** The grammar may end here (EOS is allowed). */
	public boolean isAccepting() {
		return rt.accepting(state);
	}

	/** The grammar has ended and nothing can follow: generation is complete. */
	public boolean isTerminated() {
		return rt.terminated(state);
	}

	public GrammarMatcher fork() {
		return new GrammarMatcher(rt, state);
	}

	public GrammarRuntime runtime() {
		return rt;
	}
}
