package dev.blockserve.config;

import java.time.Duration;
import java.util.List;

import dev.blockserve.api.AdmissionControl;
import dev.blockserve.api.Api;
import dev.blockserve.api.ApiErrorHandler;
import dev.blockserve.api.ApiKeyFilter;
import dev.blockserve.api.HttpEdgeHandler;
import dev.blockserve.api.InFlightExchanges;
import dev.blockserve.api.WarmupRequests;
import reactor.netty.NettyPipeline;
import dev.blockserve.engine.Engine;
import dev.blockserve.chat.ChatTemplate;

import io.github.resilience4j.bulkhead.ThreadPoolBulkheadRegistry;
import io.github.resilience4j.ratelimiter.RateLimiterRegistry;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.boot.http.codec.CodecCustomizer;
import org.springframework.boot.reactor.netty.NettyServerCustomizer;
import io.micrometer.observation.ObservationPredicate;
import org.springframework.http.server.reactive.observation.ServerRequestObservationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.util.unit.DataSize;
import org.springframework.web.reactive.function.server.RouterFunction;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;

/** The HTTP edge: OpenAI routes, API keys, error envelope, request size limit. */
@Configuration(proxyBeanMethods = false)
public class ApiConfiguration {

	/**
	 * @param apiKeys keys accepted on every route but health, version, metrics and admin; none means open
	 * @param maxRequestSize bodies above this are answered 413
	 * @param requestTimeout every request's deadline: past it generation stops, its blocks are freed and
	 * the client gets a timeout error (408, or an error event on a stream); 0 for none
	 * @param reasoningParser chat answers' {@code <think>} blocks go to {@code reasoning_content}: auto (when
	 * the chat template writes such blocks: Qwen3, QwQ, DeepSeek-R1 distills, SmolLM3), think (always; vLLM's
	 * qwen3 and deepseek_r1 parsers are taken as names of it) or none
	 */
	@ConfigurationProperties("blockserve.api")
	public record ApiProperties(@DefaultValue List<String> apiKeys, @DefaultValue("8MB") DataSize maxRequestSize,
			@DefaultValue("10m") Duration requestTimeout, @DefaultValue Http http,
			@DefaultValue("auto") String reasoningParser) {

		public ApiProperties {
			if (requestTimeout.isNegative()) {
				throw new IllegalArgumentException("blockserve.api.request-timeout must be >= 0, got " + requestTimeout);
			}
			reasoning(reasoningParser);
		}

		/** true, false, or null for auto (decided by the chat template). */
		Boolean reasoning() {
			return reasoning(reasoningParser);
		}

		private static Boolean reasoning(String parser) {
			return switch (parser.toLowerCase(java.util.Locale.ROOT)) {
				case "auto" -> null;
				case "think", "qwen3", "deepseek_r1" -> true;
				case "none" -> false;
				default -> throw new IllegalArgumentException(
						"blockserve.api.reasoning-parser must be auto, think (or qwen3, deepseek_r1) or none, got '" + parser + "'");
			};
		}
	}

	/**
	 * Connection-level limits ({@code blockserve.api.http.*}); URI and header sizes are Spring Boot's
	 * {@code server.netty.max-initial-line-length} and {@code server.max-http-request-header-size}.
	 * @param headerTimeout a request's line and headers must arrive within this (from connection or the previous response)
	 * @param bodyTimeout a request's whole body must arrive within this
	 * @param bodyReadTimeout at most this long between two reads of a body
	 */
	public record Http(@DefaultValue("10s") Duration headerTimeout, @DefaultValue("60s") Duration bodyTimeout,
			@DefaultValue("20s") Duration bodyReadTimeout) {

		public Http {
			for (Duration d : new Duration[] { headerTimeout, bodyTimeout, bodyReadTimeout }) {
				if (d.isNegative() || d.isZero()) {
					throw new IllegalArgumentException("blockserve.api.http timeouts must be positive, got " + d);
				}
			}
		}
	}

	/** The edge handler after Netty's HTTP codec on every connection, and the body timeouts. */
	@Bean
	NettyServerCustomizer httpEdge(ApiProperties props) {
		long headerMillis = props.http().headerTimeout().toMillis();
		return server -> server
			.doOnChannelInit((observer, channel, remote) -> {
				if (channel.pipeline().get(NettyPipeline.HttpCodec) != null) {
					channel.pipeline().addAfter(NettyPipeline.HttpCodec, "blockserve.httpEdge", new HttpEdgeHandler(headerMillis));
				}
			})
			.requestTimeout(props.http().bodyTimeout())
			.readTimeout(props.http().bodyReadTimeout());
	}

	/** The pool for per-request CPU work (parsing, tokenising, templates): resilience4j.thread-pool-bulkhead.instances.request-cpu. */
	@Bean
	AdmissionControl admissionControl(ApiProperties api, AdmissionProperties props, RateLimiterRegistry rateLimiters,
			ThreadPoolBulkheadRegistry bulkheads, WarmupRequests warmup) {
		return new AdmissionControl(new AdmissionControl.Limits(props.maxSequencesPerRequest(), props.maxRequestTokens(),
				props.rateLimit().requestsPerSecond(), props.rateLimit().tokensPerMinute(), api.requestTimeout()),
				rateLimiters, bulkheads.bulkhead("request-cpu"), warmup);
	}

	@Bean
	Api api(Engine engine, ServedModel served, AdmissionControl admission, ApiProperties props) {
		return new Api(engine, ChatTemplate.load(engine.runtime().directory()), served.name(), admission, props.reasoning());
	}

	/** What marks the server's own start-up requests (a secret made at start). */
	@Bean
	WarmupRequests warmupRequests() {
		return new WarmupRequests();
	}

	/** The start-up requests through the server's own port (off with blockserve.warmup-tokens=0). */
	@Bean
	HttpWarmup httpWarmup(Api api, BlockserveProperties props, ApiProperties apiProps, Engine engine, WarmupRequests warmup) {
		return new HttpWarmup(api, engine, warmup, props.warmupTokens() > 0, apiProps.apiKeys().isEmpty() ? null : apiProps.apiKeys().get(0),
				api.hasChatTemplate());
	}

	/** The warm-up's requests are not the server's traffic: the HTTP server's metrics leave them out. */
	@Bean
	ObservationPredicate warmupRequestsUnobserved(WarmupRequests warmup) {
		return (name, context) -> !(context instanceof ServerRequestObservationContext c
				&& warmup.isWarmup(c.getCarrier().getHeaders().getFirst(WarmupRequests.HEADER)));
	}

	@Bean
	RouterFunction<ServerResponse> openAiRoutes(Api api) {
		return RouterFunctions.route()
			.POST("/v1/completions", api::completions)
			.POST("/v1/chat/completions", api::chat)
			.POST("/v1/embeddings", api::embeddings)
			.POST("/v1/responses", api::responses)
			.GET("/v1/models", api::models)
			.GET("/v1/models/{id}", api::model)
			.GET("/version", api::version)
			.POST("/tokenize", api::tokenize)
			.POST("/detokenize", api::detokenize)
			.GET("/health", api::health)
			.build();
	}

	@Bean
	ApiErrorHandler apiErrorHandler() {
		return new ApiErrorHandler();
	}

	/** Counts responses not yet written: a stop waits for the answers it caused (see EngineDrain). */
	@Bean
	InFlightExchanges inFlightExchanges() {
		return new InFlightExchanges();
	}

	@Bean
	org.springframework.boot.webflux.autoconfigure.WebHttpHandlerBuilderCustomizer countExchanges(InFlightExchanges exchanges) {
		return builder -> builder.httpHandlerDecorator(exchanges::decorate);
	}

	/** Ends what the graceful phase left running with an answer, before the web server stops. */
	@Bean
	EngineDrain engineDrain(Engine engine, InFlightExchanges exchanges, org.springframework.context.ApplicationContext context) {
		return new EngineDrain(engine, exchanges, context);
	}

	@Bean
	@Order(Ordered.HIGHEST_PRECEDENCE + 10)
	ApiKeyFilter apiKeyFilter(ApiProperties props) {
		return ApiKeyFilter.api(props.apiKeys());
	}

	@Bean
	CodecCustomizer requestSizeLimit(ApiProperties props) {
		return configurer -> configurer.defaultCodecs().maxInMemorySize((int) Math.min(Integer.MAX_VALUE,
				props.maxRequestSize().toBytes()));
	}
}
