package dev.blockserve.config;

import java.time.Duration;

import dev.blockserve.admin.AdminApi;
import dev.blockserve.api.AdminSessions;
import dev.blockserve.api.ApiKeyFilter;
import dev.blockserve.engine.Engine;
import dev.blockserve.engine.ModelRuntime;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import dev.blockserve.metrics.EngineMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.MediaType;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.web.reactive.function.server.RouterFunction;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;

/** Metrics (Micrometer, scraped at /actuator/prometheus) and the admin dashboard. */
@Configuration(proxyBeanMethods = false)
public class ObservabilityConfiguration {

	/**
	 * @param apiKey when set, the dashboard's data (/admin/api/**) needs this key: Authorization: Bearer, or
	 * the session cookie the page gets by posting the key once to /admin/api/session
	 * @param streamInterval how often the dashboard stream sends a snapshot
	 * @param sessionTtl how long a dashboard session cookie stays valid
	 */
	@ConfigurationProperties("blockserve.admin")
	public record AdminProperties(String apiKey, @DefaultValue("250ms") Duration streamInterval,
			@DefaultValue("8h") Duration sessionTtl) {
	}

	@Bean
	AdminSessions adminSessions(AdminProperties props) {
		return new AdminSessions(props.sessionTtl());
	}

	@Bean
	EngineMetrics engineMetrics(MeterRegistry registry, ServedModel served, ModelRuntime runtime) {
		return new EngineMetrics(registry, served.name(), runtime.model().maxPositions());
	}

	/**
	 * {@code GET /metrics}: the Prometheus text where vLLM and llama.cpp serve it (the same scrape as
	 * /actuator/prometheus). Open, like /health, whatever API keys are set.
	 */
	@Bean
	RouterFunction<ServerResponse> metricsRoute(PrometheusMeterRegistry prometheus) {
		return RouterFunctions.route()
			.GET("/metrics", req -> ServerResponse.ok()
				.contentType(MediaType.parseMediaType("text/plain; version=0.0.4; charset=utf-8"))
				.bodyValue(prometheus.scrape()))
			.build();
	}

	@Bean
	MeterBinder engineGauges(EngineMetrics metrics, Engine engine) {
		return registry -> metrics.bind(registry, engine);
	}

	@Bean
	AdminApi adminApi(Engine engine, ServedModel served, AdminProperties props, AdminSessions sessions) {
		return new AdminApi(engine, served.name(), props.streamInterval(), sessions);
	}

	/**
	 * Ends the dashboard's streams when the context closes, before the graceful phase waits for requests
	 * (its ContextClosedEvent comes first): they never end by themselves.
	 */
	@Bean
	org.springframework.context.ApplicationListener<org.springframework.context.event.ContextClosedEvent> adminStreamsEnd(
			AdminApi admin, org.springframework.context.ApplicationContext context) {
		return event -> {
			if (event.getApplicationContext() == context) {
				admin.endStreams();
			}
		};
	}

	@Bean
	RouterFunction<ServerResponse> adminRoutes(AdminApi admin) {
		return RouterFunctions.route()
			.GET("/admin", admin::page)
			.GET("/admin/", admin::page)
			.GET("/admin/api/blocks", admin::blocks)
			.GET("/admin/api/stream", admin::stream)
			.POST("/admin/api/session", admin::session)
			.build();
	}

	@Bean
	@Order(Ordered.HIGHEST_PRECEDENCE + 11)
	ApiKeyFilter adminKeyFilter(AdminProperties props, AdminSessions sessions) {
		return ApiKeyFilter.admin(props.apiKey(), sessions);
	}
}
