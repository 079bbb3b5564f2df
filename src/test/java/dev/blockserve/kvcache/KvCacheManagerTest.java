package dev.blockserve.kvcache;

import java.util.Arrays;
import java.util.stream.IntStream;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KvCacheManagerTest {

	private final PrefixMatch match = new PrefixMatch();

	private static int[] tokens(int n, int offset) {
		return IntStream.range(0, n).map(i -> 100 + i + offset).toArray();
	}

	/** Admits a prompt as the engine does: match, allocate, compute the rest, commit. Returns cached tokens. */
	private int admit(KvCacheManager m, BlockTable t, int[] prompt) {
		m.matchPrefix(prompt, prompt.length, match);
		int cached = match.cachedTokens(m.blockSize());
		assertThat(m.allocate(t, prompt.length, match)).isTrue();
		m.commit(t, prompt, prompt.length);
		return cached;
	}

	@Test
	void twoRequestsWithA40TokenPrefixShareExactlyTwoBlocks() {
		KvCacheManager m = new KvCacheManager(new BlockPool(64, 16), true, "m");
		int[] a = new int[50];
		int[] b = new int[47];
		int[] prefix = tokens(40, 0);
		System.arraycopy(prefix, 0, a, 0, 40);
		System.arraycopy(prefix, 0, b, 0, 40);
		System.arraycopy(tokens(10, 1000), 0, a, 40, 10);
		System.arraycopy(tokens(7, 2000), 0, b, 40, 7);
		BlockTable ta = m.newTable(1);
		BlockTable tb = m.newTable(2);
		assertThat(admit(m, ta, a)).isZero();
		int cached = admit(m, tb, b);
		assertThat(cached).as("tokens the second request does not compute").isEqualTo(32);
		assertThat(b.length - cached).as("tokens it computes").isEqualTo(15);
		int shared = 0;
		for (int i = 0; i < tb.size(); i++) {
			for (int j = 0; j < ta.size(); j++) {
				if (tb.block(i) == ta.block(j)) {
					shared++;
				}
			}
		}
		assertThat(shared).isEqualTo(2);
		assertThat(m.pool().refCount(ta.block(0))).isEqualTo(2);
		assertThat(m.pool().refCount(ta.block(2))).isEqualTo(1);
		assertThat(m.prefixQueryTokens()).isEqualTo(97);
		assertThat(m.prefixHitTokens()).isEqualTo(32);
		m.checkInvariants();
	}

	@Test
	void blockAlignedFullyCachedPromptStillComputesATokens() {
		KvCacheManager m = new KvCacheManager(new BlockPool(16, 16), true, "m");
		int[] p = tokens(32, 0);
		BlockTable first = m.newTable(1);
		admit(m, first, p);
		m.free(first);
		BlockTable again = m.newTable(2);
		int cached = admit(m, again, p);
		assertThat(cached).as("a fully cached 32-token prompt reuses one block, computing the last 16 tokens")
			.isEqualTo(16);
		assertThat(again.size()).isEqualTo(2);
		m.checkInvariants();
		// one-token prompts never match at all
		m.matchPrefix(new int[] { 100 }, 1, match);
		assertThat(match.numBlocks()).isZero();
	}

	@Test
	void failedAllocationLeavesNoTrace() {
		KvCacheManager m = new KvCacheManager(new BlockPool(4, 4), true, "m");
		BlockTable a = m.newTable(1);
		admit(m, a, tokens(8, 0)); // 2 blocks, registered
		m.free(a);
		BlockTable b = m.newTable(2);
		KvCacheSnapshot before = m.snapshot();
		int[] big = Arrays.copyOf(tokens(8, 0), 24); // matches 2 cached blocks, needs 4 more: 6 > 4
		m.matchPrefix(big, big.length, match);
		assertThat(match.numBlocks()).isEqualTo(2);
		assertThat(m.allocate(b, big.length, match)).isFalse();
		KvCacheSnapshot after = m.snapshot();
		assertThat(after.states()).containsExactly(before.states());
		assertThat(after.refCounts()).containsExactly(before.refCounts());
		assertThat(b.size()).isZero();
		assertThat(m.prefixQueryTokens()).as("a failed attempt is not counted").isEqualTo(8);
		m.checkInvariants();
	}

	@Test
	void evictsLeastRecentlyFreedAndATablesTailFirst() {
		BlockPool pool = new BlockPool(7, 2);
		KvCacheManager m = new KvCacheManager(pool, true, "m");
		BlockTable a = m.newTable(1);
		admit(m, a, tokens(7, 0)); // blocks a0 a1 a2 full (hashed), a3 partial
		BlockTable b = m.newTable(2);
		admit(m, b, tokens(5, 50)); // b0 b1 hashed, b2 partial
		int[] aBlocks = new int[a.size()];
		a.copyTo(aBlocks, 0);
		int[] bBlocks = new int[b.size()];
		b.copyTo(bBlocks, 0);
		m.free(a);
		m.free(b);
		assertThat(pool.numFree()).isEqualTo(7);
		// Partial blocks hold nothing reusable: handed out first. Then a's tail, a's head, then b's.
		int[] order = new int[6];
		for (int i = 0; i < 6; i++) {
			order[i] = pool.allocate();
		}
		assertThat(Arrays.copyOf(order, 2)).containsExactlyInAnyOrder(aBlocks[3], bBlocks[2]);
		assertThat(Arrays.copyOfRange(order, 2, 6)).containsExactly(aBlocks[2], aBlocks[1], aBlocks[0], bBlocks[1]);
		assertThat(pool.evictions()).isEqualTo(4);
	}

	@Test
	void forkSharesBlocksAndCopiesOnWrite() {
		KvCacheManager m = new KvCacheManager(new BlockPool(8, 4), true, "m");
		BlockTable parent = m.newTable(1);
		int[] p = tokens(6, 0);
		admit(m, parent, p); // block 0 full, block 1 holds 2 of 4
		BlockTable child = m.fork(parent, 2);
		assertThat(m.pool().refCount(parent.block(1))).isEqualTo(2);
		BlockCopies copies = new BlockCopies();
		assertThat(m.prepareWrite(child, 6, 7, copies)).isTrue();
		assertThat(copies.count()).isEqualTo(1);
		assertThat(copies.src()[0]).isEqualTo(parent.block(1));
		assertThat(copies.dst()[0]).isEqualTo(child.block(1)).isNotEqualTo(parent.block(1));
		assertThat(child.block(0)).as("full prompt block stays shared").isEqualTo(parent.block(0));
		copies.clear();
		assertThat(m.prepareWrite(parent, 6, 7, copies)).isTrue();
		assertThat(copies.count()).as("sole holder writes in place").isZero();
		m.checkInvariants();
		KvCacheSnapshot s = m.snapshot();
		assertThat(s.refCounts()[parent.block(0)]).isEqualTo(2);
		assertThat(s.used()).isEqualTo(3);
		assertThat(Arrays.stream(s.requests()).filter(r -> r.id() == 2).findFirst().orElseThrow().blocks())
			.containsExactly(child.block(0), child.block(1));
	}

	@Test
	void differentExtraKeysNeverShare() {
		BlockPool pool = new BlockPool(8, 4);
		KvCacheManager a = new KvCacheManager(pool, true, "model-a");
		BlockTable t = a.newTable(1);
		admit(a, t, tokens(9, 0));
		KvCacheManager b = new KvCacheManager(pool, true, "model-b");
		b.matchPrefix(tokens(9, 0), 9, match);
		assertThat(match.numBlocks()).isZero();
	}

	/** vLLM's cache_salt: the same prompt shares blocks within a salt, never across salts or with none. */
	@Test
	void cacheSaltsKeepPrefixCachesApart() {
		KvCacheManager m = new KvCacheManager(new BlockPool(32, 4), true, "m");
		int[] prompt = tokens(9, 0);
		BlockTable a = m.newTable(1, "tenant-a");
		m.matchPrefix(a, prompt, prompt.length, match);
		assertThat(m.allocate(a, prompt.length, match)).isTrue();
		m.commit(a, prompt, prompt.length);

		m.matchPrefix(m.newTable(2, "tenant-a"), prompt, prompt.length, match);
		assertThat(match.numBlocks()).as("same salt").isEqualTo(2);
		m.matchPrefix(m.newTable(3, "tenant-b"), prompt, prompt.length, match);
		assertThat(match.numBlocks()).as("another salt").isZero();
		m.matchPrefix(m.newTable(4, null), prompt, prompt.length, match);
		assertThat(match.numBlocks()).as("no salt").isZero();
		m.matchPrefix(prompt, prompt.length, match);
		assertThat(match.numBlocks()).as("no salt, the manager's own root").isZero();

		// a fork stays in its parent's cache: its blocks are found by that salt only
		BlockTable child = m.fork(a, 5);
		int[] longer = Arrays.copyOf(prompt, 13);
		for (int i = 9; i < 13; i++) {
			longer[i] = 7;
		}
		assertThat(m.allocate(child, 13, null)).isTrue();
		BlockCopies copies = new BlockCopies();
		assertThat(m.prepareWrite(child, 9, 13, copies)).isTrue();
		m.commit(child, longer, 13);
		m.matchPrefix(m.newTable(6, "tenant-a"), longer, 13, match);
		assertThat(match.numBlocks()).isEqualTo(3);

		// a match made for one salt cannot be adopted by a table of another
		m.matchPrefix(m.table(2), prompt, prompt.length, match);
		assertThatThrownBy(() -> m.allocate(m.table(3), prompt.length, match)).hasMessageContaining("another cache salt");
		m.checkInvariants();
	}

	@Test
	void misuseIsReported() {
		KvCacheManager m = new KvCacheManager(new BlockPool(2, 4), false, "m");
		BlockTable t = m.newTable(1);
		assertThatThrownBy(() -> m.newTable(1)).hasMessageContaining("already has a block table");
		m.free(t);
		assertThatThrownBy(() -> m.free(t)).hasMessageContaining("not live");
		assertThatThrownBy(() -> new BlockPool(0, 16)).isInstanceOf(IllegalArgumentException.class);
		BlockPool pool = new BlockPool(1, 1);
		pool.allocate();
		assertThatThrownBy(pool::allocate).hasMessageContaining("no free KV block");
	}

	@Test
	void snapshotOfAKnownState() {
		KvCacheManager m = new KvCacheManager(new BlockPool(10, 4), true, "m");
		BlockTable a = m.newTable(7);
		admit(m, a, tokens(9, 0)); // 3 blocks; 2 full
		BlockTable b = m.newTable(8);
		int cached = admit(m, b, tokens(9, 0)); // shares the 2 full blocks
		assertThat(cached).isEqualTo(8);
		BlockTable c = m.newTable(9);
		admit(m, c, tokens(4, 500));
		m.free(c); // its one full block stays cached
		KvCacheSnapshot s = m.snapshot();
		assertThat(s.used()).isEqualTo(4);
		assertThat(s.cached()).isEqualTo(1);
		assertThat(s.free()).isEqualTo(5);
		assertThat(s.usage()).isEqualTo(0.4);
		assertThat(s.refCounts()[a.block(0)]).isEqualTo(2);
		assertThat(s.refCounts()[a.block(1)]).isEqualTo(2);
		assertThat(s.refCounts()[a.block(2)]).isEqualTo(1);
		assertThat(s.states()[a.block(0)]).isEqualTo(BlockPool.USED);
		assertThat(s.prefixHitTokens()).isEqualTo(8);
	}
}
