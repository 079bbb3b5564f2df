package dev.blockserve.admin;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import dev.blockserve.api.Sse;
import dev.blockserve.api.AdminSessions;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.EngineSnapshot;
import dev.blockserve.kvcache.KvCacheSnapshot;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.core.publisher.Sinks;
import tools.jackson.databind.json.JsonMapper;

import org.springframework.core.io.ClassPathResource;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseCookie;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;

/**
 * The admin dashboard's data: {@code GET /admin/api/blocks} (a snapshot of the block pool and the live
 * sequences) and {@code GET /admin/api/stream} (the same as Server-Sent Events a few times a second),
 * plus the page itself at {@code /admin}. Block states travel as one character per block ('0' free,
 * '1' cached, '2' in use), reference counts only for shared blocks, and owners as the sequences' block
 * tables. Beyond {@link #MAX_CELLS} blocks the stream sends, instead of every block's state, the pool in
 * {@code MAX_CELLS} groups (blocks in use and cached per group, groups holding a shared block) and the
 * states of one window of {@code MAX_CELLS} blocks only when the page zooms there ({@code ?zoom=START}):
 * an event of a million-block pool is then about 33 kB, not 1 MB, and a frame costs the page a pass
 * over 8,192 cells, not a million blocks.
 */
public final class AdminApi {

	static final JsonMapper JSON = Sse.JSON;

	private final Engine engine;

	private final String modelName;

	/** The KV cache's value type (torch's name) and size, fixed at start-up. */
	private final String cacheDtype;

	private final long cacheBytes;

	private final Duration interval;

	private final AdminSessions sessions;

	/** Set once when the server begins to stop; ends every stream, and one opened later at once. */
	private final Sinks.One<Boolean> stopping = Sinks.one();

	public AdminApi(Engine engine, String modelName, Duration interval, AdminSessions sessions) {
		this.engine = engine;
		this.modelName = modelName;
		this.cacheDtype = engine.runtime().cache().dtype().torchName();
		this.cacheBytes = engine.runtime().cache().bytes();
		this.interval = interval;
		this.sessions = sessions;
	}

	/**
	 * {@code POST /admin/api/session}: reached only with the admin key (the filter checked it); answers
	 * with an HttpOnly, same-site session cookie for the dashboard's fetches and its EventSource.
	 */
	public Mono<ServerResponse> session(ServerRequest req) {
		ResponseCookie cookie = ResponseCookie.from(AdminSessions.COOKIE, sessions.create())
			.path("/admin")
			.httpOnly(true)
			.sameSite("Strict")
			.secure("https".equalsIgnoreCase(req.uri().getScheme()))
			.maxAge(sessions.ttl())
			.build();
		return ServerResponse.noContent().cookie(cookie).build();
	}

	/** Cells the dashboard draws at most: beyond, a cell stands for a group of blocks. */
	static final int MAX_CELLS = 8192;

	/** The whole snapshot: every block's state, and the groups when the pool is large. */
	public Map<String, Object> document() {
		EngineSnapshot e = engine.engineSnapshot();
		return document(e, 0, e.kv().numBlocks());
	}

	/**
	 * The snapshot with the states of blocks [start, start + count) only (clamped to the pool), and for a
	 * pool over {@link #MAX_CELLS} blocks its groups.
	 */
	Map<String, Object> document(EngineSnapshot e, int start, int count) {
		KvCacheSnapshot kv = e.kv();
		Map<String, Object> d = new LinkedHashMap<>();
		d.put("model", modelName);
		d.put("timestamp", e.timestampMillis());
		d.put("blockSize", kv.blockSize());
		d.put("numBlocks", kv.numBlocks());
		d.put("cacheDtype", cacheDtype);
		d.put("cacheBytes", cacheBytes);
		d.put("used", kv.used());
		d.put("cached", kv.cached());
		d.put("free", kv.free());
		d.put("usage", kv.usage());
		d.put("prefixQueryTokens", kv.prefixQueryTokens());
		d.put("prefixHitTokens", kv.prefixHitTokens());
		d.put("evictions", kv.evictions());
		d.put("running", e.running());
		d.put("waiting", e.waiting());
		d.put("generatedTokens", e.generatedTokens());
		d.put("promptTokens", e.promptTokens());
		d.put("preemptions", e.preemptions());
		d.put("recentTtftMillis", e.recentTtftMillis());
		d.put("draftTokens", e.draftTokens());
		d.put("acceptedDraftTokens", e.acceptedDraftTokens());
		int n = kv.numBlocks();
		int from = Math.max(0, Math.min(start, n)), to = (int) Math.min(n, (long) from + Math.max(0, count));
		byte[] states = new byte[to - from];
		for (int b = from; b < to; b++) {
			states[b - from] = (byte) ('0' + kv.states()[b]);
		}
		// one pass over the pool: the shared blocks' counts and, for a large pool, the per-group counts
		boolean grouped = n > MAX_CELLS;
		int group = grouped ? (n + MAX_CELLS - 1) / MAX_CELLS : 1;
		int cells = grouped ? (n + group - 1) / group : 0;
		int[] used = new int[cells], cached = new int[cells];
		List<Integer> sharedGroups = new ArrayList<>();
		Map<String, Integer> shared = new LinkedHashMap<>();
		byte[] st = kv.states();
		int[] refs = kv.refCounts();
		for (int b = 0; b < n; b++) {
			if (refs[b] > 1) {
				shared.put(Integer.toString(b), refs[b]);
			}
			if (grouped) {
				int g = b / group;
				if (st[b] == 2) {
					used[g]++;
					if (refs[b] > 1 && (sharedGroups.isEmpty() || sharedGroups.get(sharedGroups.size() - 1) != g)) {
						sharedGroups.add(g);
					}
				}
				else if (st[b] == 1) {
					cached[g]++;
				}
			}
		}
		d.put("statesStart", from);
		d.put("states", new String(states, StandardCharsets.US_ASCII));
		d.put("refCounts", shared);
		if (grouped) {
			d.put("groupSize", group);
			d.put("groupUsed", used);
			d.put("groupCached", cached);
			d.put("groupShared", sharedGroups);
		}
		Map<Long, int[]> tables = new LinkedHashMap<>();
		for (KvCacheSnapshot.Request r : kv.requests()) {
			tables.put(r.id(), r.blocks());
		}
		List<Map<String, Object>> seqs = new ArrayList<>();
		for (EngineSnapshot.SequenceInfo s : e.sequences()) {
			Map<String, Object> m = new LinkedHashMap<>();
			m.put("id", s.id());
			m.put("requestId", s.requestId());
			m.put("index", s.index());
			m.put("status", s.status());
			m.put("promptTokens", s.promptTokens());
			m.put("generatedTokens", s.generatedTokens());
			m.put("blocks", tables.getOrDefault(s.id(), new int[0]));
			seqs.add(m);
		}
		d.put("requests", seqs);
		return d;
	}

	public Mono<ServerResponse> blocks(ServerRequest req) {
		return ServerResponse.ok().contentType(MediaType.APPLICATION_JSON).bodyValue(JSON.writeValueAsBytes(document()));
	}

	/**
	 * The stream; for a pool over {@link #MAX_CELLS} blocks, block states only for the window the page
	 * zoomed into ({@code ?zoom=START}), none without it (the groups draw the overview).
	 */
	public Mono<ServerResponse> stream(ServerRequest req) {
		int zoom;
		try {
			zoom = req.queryParam("zoom").map(Integer::parseInt).orElse(-1);
		}
		catch (NumberFormatException ex) {
			return ServerResponse.badRequest().contentType(MediaType.APPLICATION_JSON)
				.bodyValue(Map.of("error", Map.of("message", "zoom must be a block number", "type", "invalid_request_error")));
		}
		return Sse.response(Flux.interval(Duration.ZERO, interval)
			.onBackpressureDrop()
			// a map on the timer's thread: a concatMap of Mono.fromCallable can drop or repeat an item when the
			// event loop's request races the tick (reactor-core issue 4406; see Api.CompletionStream)
			.map(i -> {
				EngineSnapshot e = engine.engineSnapshot();
				int n = e.kv().numBlocks();
				return Sse.event(n <= MAX_CELLS ? document(e, 0, n) : document(e, Math.max(0, zoom), zoom < 0 ? 0 : MAX_CELLS));
			})
			.takeUntilOther(stopping.asMono()));
	}

	/**
	 * Ends the streams (the server is stopping): they never end by themselves, and an open dashboard would
	 * otherwise hold the graceful shutdown for its whole timeout. The page's EventSource reconnects by itself.
	 */
	public void endStreams() {
		stopping.tryEmitValue(Boolean.TRUE);
	}

	public Mono<ServerResponse> page(ServerRequest req) {
		return ServerResponse.ok().contentType(MediaType.TEXT_HTML)
			.bodyValue(new ClassPathResource("static/admin/index.html"));
	}
}
