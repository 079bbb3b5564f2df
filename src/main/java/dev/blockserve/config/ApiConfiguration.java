package dev.blockserve.config;

import java.time.Duration;
import java.util.List;

import dev.blockserve.api.AdmissionControl;
import dev.blockserve.api.Api;
import dev.blockserve.api.ApiErrorHandler;
import dev.blockserve.api.ApiKeyFilter;
import dev.blockserve.engine.Engine;
import dev.blockserve.chat.ChatTemplate;

import io.github.resilience4j.bulkhead.ThreadPoolBulkheadRegistry;
import io.github.resilience4j.ratelimiter.RateLimiterRegistry;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.boot.http.codec.CodecCustomizer;
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
	 */
	@ConfigurationProperties("blockserve.api")
	public record ApiProperties(@DefaultValue List<String> apiKeys, @DefaultValue("8MB") DataSize maxRequestSize,
			@DefaultValue("10m") Duration requestTimeout) {

		public ApiProperties {
			if (requestTimeout.isNegative()) {
				throw new IllegalArgumentException("blockserve.api.request-timeout must be >= 0, got " + requestTimeout);
			}
		}
	}

	/** The pool for per-request CPU work (parsing, tokenising, templates): resilience4j.thread-pool-bulkhead.instances.request-cpu. */
	@Bean
	AdmissionControl admissionControl(ApiProperties api, AdmissionProperties props, RateLimiterRegistry rateLimiters,
			ThreadPoolBulkheadRegistry bulkheads) {
		return new AdmissionControl(new AdmissionControl.Limits(props.maxSequencesPerRequest(), props.maxRequestTokens(),
				props.rateLimit().requestsPerSecond(), props.rateLimit().tokensPerMinute(), api.requestTimeout()),
				rateLimiters, bulkheads.bulkhead("request-cpu"));
	}

	@Bean
	Api api(Engine engine, ServedModel served, AdmissionControl admission) {
		return new Api(engine, ChatTemplate.load(engine.runtime().directory()), served.name(), admission);
	}

	@Bean
	RouterFunction<ServerResponse> openAiRoutes(Api api) {
		return RouterFunctions.route()
			.POST("/v1/completions", api::completions)
			.POST("/v1/chat/completions", api::chat)
			.GET("/v1/models", api::models)
			.POST("/tokenize", api::tokenize)
			.POST("/detokenize", api::detokenize)
			.GET("/health", api::health)
			.build();
	}

	@Bean
	ApiErrorHandler apiErrorHandler() {
		return new ApiErrorHandler();
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
