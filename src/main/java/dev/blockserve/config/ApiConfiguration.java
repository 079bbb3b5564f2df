package dev.blockserve.config;

import java.util.List;

import dev.blockserve.api.Api;
import dev.blockserve.api.ApiErrorHandler;
import dev.blockserve.api.ApiKeyFilter;
import dev.blockserve.engine.Engine;
import dev.blockserve.chat.ChatTemplate;

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
	 */
	@ConfigurationProperties("blockserve.api")
	public record ApiProperties(@DefaultValue List<String> apiKeys, @DefaultValue("8MB") DataSize maxRequestSize) {
	}

	@Bean
	Api api(Engine engine, ServedModel served) {
		return new Api(engine, ChatTemplate.load(engine.runtime().directory()), served.name());
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
