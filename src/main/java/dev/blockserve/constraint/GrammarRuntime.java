package dev.blockserve.constraint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.blockserve.kvcache.LongIntMap;

/**
 * Runs a {@link Grammar} as a pushdown automaton and computes token masks. A stack is a node (a grammar
 * position over a parent node), interned, so equal stacks are one int; a state is the sorted set of
 * stacks whose top is a byte set (plus the empty stack when the grammar may end), also interned. Both
 * are built lazily and memoised: the byte transition of a state is computed once, after which a mask is
 * a walk of the vocabulary trie doing one array read per trie node, pruning every subtree whose prefix
 * the grammar rejects. Masks of recent states are cached: inside a JSON string every position is the
 * same state, so most steps are a cache hit.
 * Shared by the requests of one grammar (and their choices), each with its own {@link GrammarMatcher};
 * owned by the engine thread.
 */
public final class GrammarRuntime {

	/** The empty set of stacks: nothing can follow. */
	static final int DEAD = 0;

	/** The empty stack (the grammar has ended). */
	private static final int BOTTOM = 0;

	/**
	 * Masks kept per runtime (vocab / 8 bytes each: 1.5 MiB for 256 masks of a 49,152-token vocabulary),
	 * enough for the states a schema's generations revisit.
	 */
	private static final int MASK_CACHE = 256;

	/**
	 * Past this many memoised transition rows (1 KiB each, so 4 MiB a request at most), the rows are
	 * dropped and rebuilt on demand. A schema's generation visits tens to hundreds of states.
	 */
	private static final int MAX_TRANSITION_ROWS = 4096;

	final Grammar g;

	final TokenVocabulary vocab;

	private final int[] eos;

	private final int maskWords;

	private final int vocabSize;

	private int[] nodePos = new int[256];

	private int[] nodeParent = new int[256];

	private int[] visited = new int[256];

	private int epoch;

	private int nodeCount;

	private final LongIntMap nodeIndex = new LongIntMap(256);

	private final List<int[]> stateNodes = new ArrayList<>();

	private boolean[] accepting = new boolean[64];

	private int[][] trans = new int[64][];

	private int transRows;

	private final Map<StateKey, Integer> stateIndex = new HashMap<>();

	private final Map<Integer, long[]> masks = new LinkedHashMap<>(MASK_CACHE * 2, 0.75f, true) {
		@Override
		protected boolean removeEldestEntry(Map.Entry<Integer, long[]> e) {
			return size() > MASK_CACHE;
		}
	};

	private final TokenVocabulary.IntList scratch = new TokenVocabulary.IntList();

	private int[] depthState = new int[64];

	final int initial;

	private long maskComputations;


	/**
	 * @param eos token ids that end generation: allowed where the grammar may end
	 * @param vocabSize the model's vocabulary (mask width; may exceed the tokenizer's)
	 */
	public GrammarRuntime(Grammar g, TokenVocabulary vocab, int[] eos, int vocabSize) {
		this.g = g;
		this.vocab = vocab;
		this.eos = eos.clone();
		this.maskWords = (vocabSize + 63) >>> 6;
		this.vocabSize = vocabSize;
		nodePos[0] = -1;
		nodeParent[0] = -1;
		nodeCount = 1;
		stateNodes.add(new int[0]); // DEAD
		stateIndex.put(new StateKey(new int[0]), DEAD);
		epoch++;
		scratch.size = 0;
		for (int a : g.alts[g.root]) {
			expand(a, BOTTOM);
		}
		initial = intern();
	}

	/** Words of a mask: one bit per token of the model's vocabulary. */
	public int maskWords() {
		return maskWords;
	}

	public GrammarMatcher matcher() {
		return new GrammarMatcher(this, initial);
	}

	boolean accepting(int state) {
		return accepting[state];
	}

	/** Accepting, and no byte can follow: only the end is left. */
	boolean terminated(int state) {
		return accepting[state] && stateNodes.get(state).length == 1;
	}

	private int node(int pos, int parent) {
		long key = ((long) pos << 32) | (parent & 0xffffffffL);
		int id = nodeIndex.get(key);
		if (id >= 0) {
			return id;
		}
		if (nodeCount == nodePos.length) {
			nodePos = Arrays.copyOf(nodePos, nodeCount * 2);
			nodeParent = Arrays.copyOf(nodeParent, nodeCount * 2);
			visited = Arrays.copyOf(visited, nodeCount * 2);
		}
		id = nodeCount++;
		nodePos[id] = pos;
		nodeParent[id] = parent;
		nodeIndex.put(key, id);
		return id;
	}

	/** Adds to {@code scratch} every stack reachable from "at pos, then parent" without reading a byte. */
	private void expand(int pos, int parent) {
		int id = node(pos, parent);
		if (visited[id] == epoch) {
			return; // each (position, parent) once per closure: ends nullable loops such as (a*)*
		}
		visited[id] = epoch;
		switch (g.kind[pos]) {
			case Grammar.SET -> scratch.add(id);
			case Grammar.END -> {
				if (parent == BOTTOM) {
					if (visited[BOTTOM] != epoch) {
						visited[BOTTOM] = epoch;
						scratch.add(BOTTOM);
					}
				}
				else {
					expand(nodePos[parent], nodeParent[parent]);
				}
			}
			default -> {
				int cont = pos + 1;
				// a reference at the end of its alternative returns straight to the parent (no growth)
				int p2 = g.kind[cont] == Grammar.END ? parent : node(cont, parent);
				for (int a : g.alts[g.arg[pos]]) {
					expand(a, p2);
				}
			}
		}
	}

	/** Interns the set in {@code scratch} as a state. */
	private int intern() {
		int[] set = scratch.toArray();
		Arrays.sort(set);
		StateKey key = new StateKey(set);
		Integer s = stateIndex.get(key);
		if (s != null) {
			return s;
		}
		int id = stateNodes.size();
		stateNodes.add(set);
		stateIndex.put(key, id);
		if (id == trans.length) {
			trans = Arrays.copyOf(trans, id * 2);
			accepting = Arrays.copyOf(accepting, id * 2);
		}
		accepting[id] = set.length > 0 && set[0] == BOTTOM;
		return id;
	}

	/** The state after reading byte {@code b} in {@code state}; {@link #DEAD} when the grammar rejects it. */
	int next(int state, int b) {
		int[] row = trans[state];
		if (row != null) {
			int t = row[b];
			if (t >= 0) {
				return t;
			}
		}
		else {
			if (++transRows > MAX_TRANSITION_ROWS) {
				Arrays.fill(trans, null); // memo only: rebuilt on demand
				transRows = 1;
			}
			row = new int[256];
			Arrays.fill(row, -1);
			trans[state] = row;
		}
		epoch++;
		scratch.size = 0;
		for (int n : stateNodes.get(state)) {
			if (n == BOTTOM) {
				continue;
			}
			int pos = nodePos[n];
			if (g.setHas(g.arg[pos], b)) {
				expand(pos + 1, nodeParent[n]);
			}
		}
		int t = intern();
		row[b] = t;
		return t;
	}

	/**
	 * The tokens allowed in {@code state} (and EOS where the grammar may end), one bit each: the cached
	 * array itself, which callers only read (no copy per step). Computed on a miss and then cached.
	 */
	long[] mask(int state) {
		long[] cached = masks.get(state);
		if (cached != null) {
			return cached;
		}
		maskComputations++;
		long[] words = new long[maskWords];
		int[] depth = vocab.depth;
		byte[] edge = vocab.edge;
		int[] end = vocab.subtreeEnd;
		int[] start = vocab.tokenStart;
		int[] ids = vocab.tokenIds;
		int limit = vocabSize; // a tokenizer may know ids the model's output layer does not have
		if (depthState.length <= vocab.maxDepth) {
			depthState = new int[vocab.maxDepth + 1];
		}
		int[] ds = depthState;
		ds[0] = state;
		int n = depth.length;
		for (int i = 0; i < n;) {
			int d = depth[i];
			int s = next(ds[d - 1], edge[i] & 0xff);
			if (s == DEAD) {
				i = end[i]; // no token below this prefix can be accepted
				continue;
			}
			ds[d] = s;
			for (int k = start[i]; k < start[i + 1]; k++) {
				int t = ids[k];
				if (t < limit) {
					words[t >>> 6] |= 1L << t;
				}
			}
			i++;
		}
		if (accepting[state]) {
			for (int t : eos) {
				if (t >= 0 && t < limit) {
					words[t >>> 6] |= 1L << t;
				}
			}
		}
		masks.put(state, words);
		return words;
	}

	public long maskComputations() {
		return maskComputations;
	}

	public int numStates() {
		return stateNodes.size();
	}

	boolean isEos(int token) {
		for (int t : eos) {
			if (t == token) {
				return true;
			}
		}
		return false;
	}

	private record StateKey(int[] nodes) {

		@Override
		public boolean equals(Object o) {
			return o instanceof StateKey k && Arrays.equals(nodes, k.nodes);
		}

		@Override
		public int hashCode() {
			return Arrays.hashCode(nodes);
		}
	}
}
