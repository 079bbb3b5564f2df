package dev.blockserve.constraint;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Compiled grammars by their source (a schema's text, a regex, a choice list), so that clients sending
 * the same schema with every request compile it once. Least recently used entries go first; a grammar is
 * immutable, so sharing one between requests is safe. Thread-safe: request threads compile through it.
 */
public final class GrammarCache {

	private final Map<String, Grammar> map;

	public GrammarCache(int capacity) {
		this.map = new LinkedHashMap<>(capacity * 2, 0.75f, true) {
			@Override
			protected boolean removeEldestEntry(Map.Entry<String, Grammar> e) {
				return size() > capacity;
			}
		};
	}

	/** The grammar for {@code key}, compiled by {@code compile} on a miss (outside the lock). */
	public Grammar get(String key, Supplier<Grammar> compile) {
		synchronized (map) {
			Grammar g = map.get(key);
			if (g != null) {
				return g;
			}
		}
		Grammar g = compile.get();
		synchronized (map) {
			map.put(key, g);
		}
		return g;
	}
}
