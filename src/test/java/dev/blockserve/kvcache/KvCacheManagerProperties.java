package dev.blockserve.kvcache;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import dev.blockserve.support.Property;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Thousands of random operation sequences over many requests (admit with prefix matching, append tokens,
 * fork, free, all under memory pressure that forces eviction and failed allocations), with every
 * invariant checked after every operation. A shadow copy of what each physical slot holds proves the
 * observable property: every token a live request has computed is still in the slot its block table
 * points to, whatever was shared, copied on write, cached or evicted. Requests belong to one of three
 * tenants (no cache salt, and two salts): a request adopts only cached blocks that its own tenant wrote.
 */
class KvCacheManagerProperties {

	sealed interface Op permits Setup, Admit, Append, Fork, Free {
	}

	record Setup(int numBlocks, int blockSize, boolean prefixCaching) implements Op {
	}

	/**
	 * A prompt of {@code len} tokens starting with base prefix {@code base}, varied after by {@code salt}, of
	 * tenant {@code tenant} (0: no cache salt, else the cache salt "tenant-N").
	 */
	record Admit(int base, int len, int salt, int tenant) implements Op {
	}

	record Append(int who, int count, int salt) implements Op {
	}

	record Fork(int who) implements Op {
	}

	record Free(int who) implements Op {
	}

	static final int VOCAB = 4;

	static List<Op> generate(Random r) {
		List<Op> ops = new ArrayList<>();
		int bs = new int[] { 1, 2, 4, 16 }[r.nextInt(4)];
		ops.add(new Setup(2 + r.nextInt(40), bs, r.nextInt(5) != 0));
		int n = 1 + r.nextInt(60);
		for (int i = 0; i < n; i++) {
			int k = r.nextInt(10);
			if (k < 4) {
				ops.add(new Admit(r.nextInt(3), 1 + r.nextInt(3 * bs + 4), r.nextInt(3), r.nextInt(3)));
			}
			else if (k < 7) {
				ops.add(new Append(r.nextInt(8), 1 + r.nextInt(bs + 2), r.nextInt(VOCAB)));
			}
			else if (k < 8) {
				ops.add(new Fork(r.nextInt(8)));
			}
			else {
				ops.add(new Free(r.nextInt(8)));
			}
		}
		return ops;
	}

	/** The system under test plus the shadow of slot contents. */
	static final class Sim {

		final BlockPool pool;

		final KvCacheManager m;

		final int bs;

		final int[] shadow;

		/** The tenant whose request last wrote each slot. */
		final int[] writer;

		final List<Req> live = new ArrayList<>();

		final PrefixMatch match = new PrefixMatch();

		final BlockCopies copies = new BlockCopies();

		long nextId;

		static final class Req {

			BlockTable t;

			int[] tokens = new int[16];

			int len;

			int tenant;
		}

		Sim(Setup s) {
			pool = new BlockPool(s.numBlocks(), s.blockSize(), 1 + s.numBlocks());
			m = new KvCacheManager(pool, s.prefixCaching(), "model");
			bs = s.blockSize();
			shadow = new int[s.numBlocks() * bs];
			Arrays.fill(shadow, -1);
			writer = new int[s.numBlocks() * bs];
			Arrays.fill(writer, -1);
		}

		int slot(Req q, int pos) {
			return q.t.block(pos / bs) * bs + pos % bs;
		}

		void write(Req q, int from, int to) {
			for (int p = from; p < to; p++) {
				shadow[slot(q, p)] = q.tokens[p];
				writer[slot(q, p)] = q.tenant;
			}
		}

		void applyCopies() {
			for (int i = 0; i < copies.count(); i++) {
				System.arraycopy(shadow, copies.src()[i] * bs, shadow, copies.dst()[i] * bs, bs);
				System.arraycopy(writer, copies.src()[i] * bs, writer, copies.dst()[i] * bs, bs);
			}
			copies.clear();
		}

		void apply(Op op) {
			if (op instanceof Admit a) {
					Req q = new Req();
					q.tokens = new int[a.len() + 64];
					for (int i = 0; i < a.len(); i++) {
						// three families of prompts that share long prefixes, diverging late by salt
						q.tokens[i] = i < a.len() - 1 ? (a.base() + i / 3) % VOCAB : (a.salt() + i) % VOCAB;
					}
					q.len = a.len();
					q.tenant = a.tenant();
					q.t = m.newTable(nextId++, a.tenant() == 0 ? null : "tenant-" + a.tenant());
					m.matchPrefix(q.t, q.tokens, q.len, match);
					int cached = match.cachedTokens(bs);
					assertThat(cached).as("a cached prefix leaves a token to compute").isLessThan(q.len);
					if (!m.allocate(q.t, q.len, match)) {
						assertThat(q.t.size()).as("failed allocation leaves no trace").isZero();
						m.free(q.t);
						return;
					}
					for (int p = 0; p < cached; p++) {
						assertThat(shadow[slot(q, p)]).as("adopted cached slot %d", p).isEqualTo(q.tokens[p]);
						assertThat(writer[slot(q, p)]).as("tenant that wrote adopted slot %d", p).isEqualTo(q.tenant);
					}
					assertThat(m.prepareWrite(q.t, cached, q.len, copies)).isTrue();
					applyCopies();
					write(q, cached, q.len);
					m.commit(q.t, q.tokens, q.len);
					live.add(q);
			}
			else if (op instanceof Append a) {
					if (live.isEmpty()) {
						return;
					}
					Req q = live.get(a.who() % live.size());
					for (int i = 0; i < a.count(); i++) {
						int free = pool.numFree();
						int size = q.t.size();
						if (!m.allocate(q.t, q.len + 1, null)) {
							assertThat(pool.numFree()).isEqualTo(free);
							assertThat(q.t.size()).isEqualTo(size);
							return;
						}
						if (!m.prepareWrite(q.t, q.len, q.len + 1, copies)) {
							assertThat(copies.count()).isZero();
							return;
						}
						applyCopies();
						if (q.len == q.tokens.length) {
							q.tokens = Arrays.copyOf(q.tokens, q.len * 2);
						}
						q.tokens[q.len] = (a.salt() + q.len) % VOCAB;
						write(q, q.len, q.len + 1);
						q.len++;
						m.commit(q.t, q.tokens, q.len);
					}
			}
			else if (op instanceof Fork f) {
					if (live.isEmpty()) {
						return;
					}
					Req p = live.get(f.who() % live.size());
					Req c = new Req();
					c.t = m.fork(p.t, nextId++);
					c.tokens = p.tokens.clone();
					c.len = p.len;
					c.tenant = p.tenant;
					live.add(c);
			}
			else if (op instanceof Free f) {
					if (live.isEmpty()) {
						return;
					}
					Req q = live.remove(f.who() % live.size());
					m.free(q.t);
			}
		}

		void check() {
			m.checkInvariants();
			for (Req q : live) {
				for (int p = 0; p < q.len; p++) {
					if (shadow[slot(q, p)] != q.tokens[p]) {
						throw new AssertionError("request " + q.t.requestId() + " position " + p + " reads "
								+ shadow[slot(q, p)] + " from block " + q.t.block(p / bs) + ", wrote " + q.tokens[p]);
					}
				}
			}
		}

		void finish() {
			for (Req q : live) {
				m.free(q.t);
			}
			live.clear();
			m.checkInvariants();
			assertThat(pool.numFree()).as("every block free after all requests end").isEqualTo(pool.numBlocks());
			assertThat(m.numLiveTables()).isZero();
		}
	}

	static void runSequence(List<Op> ops) {
		Sim sim = new Sim((Setup) ops.get(0));
		for (Op op : ops) {
			sim.apply(op);
			sim.check();
		}
		sim.finish();
	}

	@Test
	void invariantsHoldUnderRandomOperations() {
		Property.forAll("block manager invariants", 4000, 20261128L, KvCacheManagerProperties::generate,
				KvCacheManagerProperties::runSequence);
	}
}
