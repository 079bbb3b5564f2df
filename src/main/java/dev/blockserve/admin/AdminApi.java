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
import tools.jackson.databind.json.JsonMapper;

import org.springframework.core.io.ClassPathResource;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseCookie;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;

/**
 * The admin dashboard's data: {@code GET /admin/api/blocks} (a snapshot of the block pool and the live
 * sequences) and {@code GET /admin/api/stream} (the same, compact, as Server-Sent Events a few times a
 * second), plus the page itself at {@code /admin}. Block states travel as one character per block
 * ('0' free, '1' cached, '2' in use), reference counts only for shared blocks, and owners as the
 * sequences' block tables, so a 100,000-block pool is about 100 kB per snapshot.
 */
public final class AdminApi {

	static final JsonMapper JSON = Sse.JSON;

	private final Engine engine;

	private final String modelName;

	private final Duration interval;

	private final AdminSessions sessions;

	public AdminApi(Engine engine, String modelName, Duration interval, AdminSessions sessions) {
		this.engine = engine;
		this.modelName = modelName;
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

	/** The snapshot as the JSON document the dashboard and tests read. */
	public Map<String, Object> document() {
		EngineSnapshot e = engine.engineSnapshot();
		KvCacheSnapshot kv = e.kv();
		Map<String, Object> d = new LinkedHashMap<>();
		d.put("model", modelName);
		d.put("timestamp", e.timestampMillis());
		d.put("blockSize", kv.blockSize());
		d.put("numBlocks", kv.numBlocks());
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
		byte[] states = new byte[kv.numBlocks()];
		Map<String, Integer> shared = new LinkedHashMap<>();
		for (int b = 0; b < states.length; b++) {
			states[b] = (byte) ('0' + kv.states()[b]);
			if (kv.refCounts()[b] > 1) {
				shared.put(Integer.toString(b), kv.refCounts()[b]);
			}
		}
		d.put("states", new String(states, StandardCharsets.US_ASCII));
		d.put("refCounts", shared);
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

	public Mono<ServerResponse> stream(ServerRequest req) {
		return Sse.response(Flux.interval(Duration.ZERO, interval)
			.onBackpressureDrop()
			.concatMap(i -> Mono.fromCallable(() -> Sse.event(document())), 1));
	}

	public Mono<ServerResponse> page(ServerRequest req) {
		return ServerResponse.ok().contentType(MediaType.TEXT_HTML)
			.bodyValue(new ClassPathResource("static/admin/index.html"));
	}
}
