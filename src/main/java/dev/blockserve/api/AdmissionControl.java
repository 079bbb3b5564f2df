package dev.blockserve.api;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.concurrent.CompletionException;
import java.util.function.Supplier;

import io.github.resilience4j.bulkhead.ThreadPoolBulkhead;
import io.github.resilience4j.ratelimiter.RateLimiter;
import io.github.resilience4j.ratelimiter.RateLimiterConfig;
import io.github.resilience4j.ratelimiter.RateLimiterRegistry;
import reactor.core.publisher.Mono;

import org.springframework.http.HttpHeaders;
import org.springframework.web.reactive.function.server.ServerRequest;

/**
 * What the HTTP edge checks before a request reaches the engine (whose own waiting queue is bounded
 * too): per-request caps on sequences (prompts × n) and requested tokens, per-API-key rate limits in
 * requests per second and tokens per minute (Resilience4j rate limiters, off unless configured), and a
 * bounded pool (a Resilience4j thread-pool bulkhead) for the CPU work done per request outside the
 * engine: JSON parsing, tokenising, template rendering. That work never runs on Netty's event loop, so
 * a large body cannot stall /health or other connections. Thread-safe: request threads share it.
 */
public final class AdmissionControl {

	/**
	 * @param maxSequencesPerRequest prompts × n at most in one request
	 * @param maxRequestTokens (prompt + max_tokens) × n summed over a request's prompts, at most
	 * @param requestsPerSecond per API key; 0 for no limit
	 * @param tokensPerMinute per API key, prompt plus max_tokens; 0 for no limit
	 * @param requestTimeout deadline of every request; zero for none
	 */
	public record Limits(int maxSequencesPerRequest, long maxRequestTokens, int requestsPerSecond,
			long tokensPerMinute, Duration requestTimeout) {
	}

	private final WarmupRequests warmup;

	private final Limits limits;

	private final RateLimiterRegistry rateLimiters;

	private final ThreadPoolBulkhead cpuWork;

	private final RateLimiterConfig perSecond;

	private final RateLimiterConfig perMinute;

	public AdmissionControl(Limits limits, RateLimiterRegistry rateLimiters, ThreadPoolBulkhead cpuWork,
			WarmupRequests warmup) {
		this.warmup = warmup;
		this.limits = limits;
		this.rateLimiters = rateLimiters;
		this.cpuWork = cpuWork;
		this.perSecond = RateLimiterConfig.custom()
			.limitForPeriod(Math.max(1, limits.requestsPerSecond()))
			.limitRefreshPeriod(Duration.ofSeconds(1))
			.timeoutDuration(Duration.ZERO)
			.build();
		this.perMinute = RateLimiterConfig.custom()
			.limitForPeriod((int) Math.min(Integer.MAX_VALUE, Math.max(1, limits.tokensPerMinute())))
			.limitRefreshPeriod(Duration.ofMinutes(1))
			.timeoutDuration(Duration.ZERO)
			.build();
	}

	public Duration requestTimeout() {
		return limits.requestTimeout().isZero() ? null : limits.requestTimeout();
	}

	/**
	 * Runs {@code work} (parsing, tokenising, rendering, then the submit) on the CPU-work pool; a full
	 * pool is a 429. The returned Mono continues on the pool's thread, or on the engine's for its events.
	 */
	public <T> Mono<T> offload(Supplier<Mono<T>> work) {
		return Mono.defer(() -> Mono.fromCompletionStage(cpuWork.executeSupplier(work)))
			.onErrorMap(CompletionException.class, e -> e.getCause() != null ? e.getCause() : e)
			.flatMap(m -> m);
	}

	/** Checks a request's size before it is submitted: a 400 naming the cap it passes. */
	public void checkSize(int sequences, long requestedTokens) {
		if (sequences > limits.maxSequencesPerRequest()) {
			throw ApiException.badRequest("the request asks for " + sequences + " sequences (prompts x n); at most "
					+ limits.maxSequencesPerRequest() + " are served per request (blockserve.admission.max-sequences-per-request)",
					"n");
		}
		if (requestedTokens > limits.maxRequestTokens()) {
			throw ApiException.badRequest("the request asks for up to " + requestedTokens + " tokens ((prompt + "
					+ "max_tokens) x n over its prompts); at most " + limits.maxRequestTokens()
					+ " are served per request (blockserve.admission.max-request-tokens)", "max_tokens");
		}
	}

	/** An embedding request's inputs' tokens against blockserve.admission.max-request-tokens. */
	public void checkInputTokens(long tokens) {
		if (tokens > limits.maxRequestTokens()) {
			throw ApiException.badRequest("the request's inputs hold " + tokens + " tokens; at most " + limits.maxRequestTokens()
					+ " are served per request (blockserve.admission.max-request-tokens)", "input");
		}
	}

	/**
	 * Takes the request's share of its API key's rate limits, or answers 429 with Retry-After. The server's
	 * own warm-up requests take none.
	 */
	public void rateLimit(ServerRequest req, long requestedTokens) {
		if (limits.requestsPerSecond() <= 0 && limits.tokensPerMinute() <= 0 || warmup.isWarmup(req)) {
			return;
		}
		String key = keyId(req.headers().firstHeader(HttpHeaders.AUTHORIZATION));
		if (limits.requestsPerSecond() > 0) {
			RateLimiter rps = rateLimiters.rateLimiter("requests-" + key, perSecond);
			if (!rps.acquirePermission()) {
				throw ApiException.tooManyRequests("Rate limit reached: " + limits.requestsPerSecond()
						+ " requests per second for this API key", 1);
			}
		}
		if (limits.tokensPerMinute() > 0) {
			RateLimiter tpm = rateLimiters.rateLimiter("tokens-" + key, perMinute);
			int permits = (int) Math.min(requestedTokens, limits.tokensPerMinute());
			if (!tpm.acquirePermission(permits)) {
				throw ApiException.tooManyRequests("Rate limit reached: " + limits.tokensPerMinute()
						+ " tokens per minute for this API key (this request asks for " + requestedTokens + ")", 60);
			}
		}
	}

	/** A short digest of the bearer key, so limiter names and metrics never hold the key itself. */
	static String keyId(String authorization) {
		if (authorization == null || authorization.isBlank()) {
			return "anonymous";
		}
		try {
			byte[] d = MessageDigest.getInstance("SHA-256").digest(authorization.getBytes(StandardCharsets.UTF_8));
			return HexFormat.of().formatHex(d, 0, 6);
		}
		catch (NoSuchAlgorithmException e) {
			throw new IllegalStateException(e);
		}
	}
}
