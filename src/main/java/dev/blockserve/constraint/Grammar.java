package dev.blockserve.constraint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A context-free grammar over bytes (UTF-8), compiled to flat arrays: every rule is a list of
 * alternatives, every alternative a sequence of positions, and a position is a byte set, a reference to
 * a rule, or the end of its alternative. A matcher's state is a set of stacks of positions (a pushdown
 * automaton, as llama.cpp's grammar engine); {@link GrammarRuntime} runs it. The grammars built here
 * have no left recursion, which is what keeps a stack's expansion finite. Immutable: compiled on a
 * request thread, read by the engine thread.
 */
public final class Grammar {

	static final int SET = 0;

	static final int REF = 1;

	static final int END = 2;

	/** Per position: SET, REF or END. */
	final int[] kind;

	/** Per position: the byte set's index (SET) or the rule (REF). */
	final int[] arg;

	/** Byte sets, four longs each (bit b of word b >> 6). */
	final long[] sets;

	/** Per rule: the first position of each alternative. */
	final int[][] alts;

	final int root;

	private final String description;

	private Grammar(int[] kind, int[] arg, long[] sets, int[][] alts, int root, String description) {
		this.kind = kind;
		this.arg = arg;
		this.sets = sets;
		this.alts = alts;
		this.root = root;
		this.description = description;
	}

	boolean setHas(int set, int b) {
		return (sets[set * 4 + (b >>> 6)] & (1L << b)) != 0;
	}

	@Override
	public String toString() {
		return description;
	}

	/** One element of an alternative: a byte set or a rule. Immutable. */
	public sealed interface Sym permits Bytes, Rule {
	}

	/** A set of byte values. */
	public record Bytes(long[] bits) implements Sym {

		public static Bytes of(int... bytes) {
			long[] w = new long[4];
			for (int b : bytes) {
				w[b >>> 6] |= 1L << b;
			}
			return new Bytes(w);
		}

		public static Bytes range(int lo, int hi) {
			long[] w = new long[4];
			for (int b = lo; b <= hi; b++) {
				w[b >>> 6] |= 1L << b;
			}
			return new Bytes(w);
		}

		public Bytes union(Bytes o) {
			long[] w = bits.clone();
			for (int i = 0; i < 4; i++) {
				w[i] |= o.bits[i];
			}
			return new Bytes(w);
		}

		public Bytes minus(Bytes o) {
			long[] w = bits.clone();
			for (int i = 0; i < 4; i++) {
				w[i] &= ~o.bits[i];
			}
			return new Bytes(w);
		}

		public boolean isEmpty() {
			return (bits[0] | bits[1] | bits[2] | bits[3]) == 0;
		}

		public boolean has(int b) {
			return (bits[b >>> 6] & (1L << b)) != 0;
		}
	}

	/** A reference to rule {@code id} of the builder that made it. */
	public record Rule(int id) implements Sym {
	}

	/**
	 * Builds a grammar from rules; the helpers add the rules a repetition or an option needs. Not
	 * thread-safe: one compiler uses it.
	 */
	public static final class Builder {

		/** Rules beyond this are refused: a schema that large is a mistake or an attack. */
		static final int MAX_POSITIONS = 1 << 20;

		private final List<List<List<Sym>>> rules = new ArrayList<>();

		private final List<String> names = new ArrayList<>();

		private int positions;

		/** A rule with no alternatives yet ({@link #define} adds them): for recursion. */
		public Rule declare(String name) {
			rules.add(null);
			names.add(name);
			return new Rule(rules.size() - 1);
		}

		/** Gives a declared rule its alternatives. */
		public void define(Rule r, List<List<Sym>> alternatives) {
			if (rules.get(r.id()) != null) {
				throw new IllegalStateException("rule " + names.get(r.id()) + " is already defined");
			}
			List<List<Sym>> copy = new ArrayList<>();
			for (List<Sym> a : alternatives) {
				copy.add(List.copyOf(a));
				positions += a.size() + 1;
			}
			if (positions > MAX_POSITIONS) {
				throw new GrammarException("the grammar is too large (over " + MAX_POSITIONS + " elements)");
			}
			rules.set(r.id(), copy);
		}

		/** A new rule with these alternatives. */
		@SafeVarargs
		public final Rule rule(String name, List<Sym>... alternatives) {
			Rule r = declare(name);
			define(r, Arrays.asList(alternatives));
			return r;
		}

		/** The bytes of {@code s} in UTF-8, one set each. */
		public static List<Sym> literal(String s) {
			List<Sym> out = new ArrayList<>();
			for (byte b : s.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
				out.add(Bytes.of(b & 0xff));
			}
			return out;
		}

		/** Concatenates symbols, literal strings and lists of symbols. */
		public static List<Sym> seq(Object... parts) {
			List<Sym> out = new ArrayList<>();
			for (Object p : parts) {
				if (p instanceof Sym s) {
					out.add(s);
				}
				else if (p instanceof String s) {
					out.addAll(literal(s));
				}
				else if (p instanceof List<?> l) {
					for (Object o : l) {
						out.add((Sym) o);
					}
				}
				else {
					throw new IllegalArgumentException("not a grammar part: " + p);
				}
			}
			return out;
		}

		/** {@code body?} */
		public Rule optional(String name, List<Sym> body) {
			return rule(name, body, List.of());
		}

		/** {@code body*}, right-recursive so that its stack does not grow (a tail reference pushes nothing). */
		public Rule star(String name, List<Sym> body) {
			Rule r = declare(name);
			List<Sym> again = new ArrayList<>(body);
			again.add(r);
			define(r, List.of(again, List.of()));
			return r;
		}

		/**
		 * {@code body{min,max}}; {@code max} -1 for no bound. Bounded repetition nests options
		 * ({@code b(b(b)?)?}), so its size is linear in max.
		 */
		public List<Sym> repeat(String name, List<Sym> body, int min, int max) {
			List<Sym> out = new ArrayList<>();
			for (int i = 0; i < min; i++) {
				out.addAll(body);
			}
			if (max < 0) {
				out.add(star(name + "*", body));
			}
			else if (max > min) {
				Rule tail = null;
				for (int i = max - min; i > 0; i--) {
					List<Sym> alt = new ArrayList<>(body);
					if (tail != null) {
						alt.add(tail);
					}
					tail = optional(name + "{" + i + "}", alt);
				}
				out.add(tail);
			}
			return out;
		}

		/** A rule with one alternative per list. */
		public Rule choice(String name, List<List<Sym>> alternatives) {
			Rule r = declare(name);
			define(r, alternatives);
			return r;
		}

		/**
		 * Rules that can derive some byte string (a fixpoint: a rule is productive when one of its
		 * alternatives holds only byte sets and productive rules). A {@code $ref} cycle with no base case is
		 * not; an alternative that uses such a rule could start but never end, so it is dropped, and a
		 * root that is not productive matches nothing.
		 */
		private boolean[] productive() {
			boolean[] p = new boolean[rules.size()];
			for (boolean changed = true; changed;) {
				changed = false;
				for (int r = 0; r < p.length; r++) {
					if (!p[r] && rules.get(r) != null) {
						for (List<Sym> alt : rules.get(r)) {
							if (alt.stream().allMatch(x -> x instanceof Bytes || p[((Rule) x).id()])) {
								p[r] = changed = true;
								break;
							}
						}
					}
				}
			}
			return p;
		}

		public Grammar build(Rule root, String description) {
			boolean[] productive = productive();
			if (!productive[root.id()]) {
				throw new GrammarException("the " + description + " matches nothing: its definitions only refer to each other "
						+ "(a $ref cycle with no way out)");
			}
			for (int r = 0; r < rules.size(); r++) {
				if (rules.get(r) != null) {
					List<List<Sym>> kept = new ArrayList<>();
					for (List<Sym> alt : rules.get(r)) {
						if (alt.stream().allMatch(x -> x instanceof Bytes || productive[((Rule) x).id()])) {
							kept.add(alt);
						}
						else {
							positions -= alt.size() + 1;
						}
					}
					rules.set(r, kept);
				}
			}
			int n = rules.size();
			int[][] alts = new int[n][];
			List<long[]> sets = new ArrayList<>();
			java.util.Map<String, Integer> setIndex = new java.util.HashMap<>();
			int[] kind = new int[positions];
			int[] arg = new int[positions];
			int pos = 0;
			for (int r = 0; r < n; r++) {
				List<List<Sym>> alternatives = rules.get(r);
				if (alternatives == null) {
					throw new IllegalStateException("rule " + names.get(r) + " is declared but never defined");
				}
				alts[r] = new int[alternatives.size()];
				for (int a = 0; a < alternatives.size(); a++) {
					alts[r][a] = pos;
					for (Sym s : alternatives.get(a)) {
						if (s instanceof Bytes b) {
							if (b.isEmpty()) {
								throw new GrammarException("rule " + names.get(r) + " has an empty byte set: nothing can match it");
							}
							String key = Arrays.toString(b.bits());
							Integer idx = setIndex.get(key);
							if (idx == null) {
								idx = sets.size();
								sets.add(b.bits());
								setIndex.put(key, idx);
							}
							kind[pos] = SET;
							arg[pos] = idx;
						}
						else {
							kind[pos] = REF;
							arg[pos] = ((Rule) s).id();
						}
						pos++;
					}
					kind[pos] = END;
					pos++;
				}
			}
			long[] flat = new long[sets.size() * 4];
			for (int i = 0; i < sets.size(); i++) {
				System.arraycopy(sets.get(i), 0, flat, i * 4, 4);
			}
			return new Grammar(kind, arg, flat, alts, root.id(), description);
		}
	}
}
