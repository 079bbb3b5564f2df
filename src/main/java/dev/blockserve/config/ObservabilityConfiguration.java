package dev.blockserve.config;

import java.time.Duration;
import java.util.List;

import dev.blockserve.admin.AdminApi;
import dev.blockserve.api.ApiKeyFilter;
import dev.blockserve.engine.Engine;
import dev.blockserve.metrics.EngineMetrics;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.web.reactive.function.server.RouterFunction;
import org.springframework.web.reactive.function.server.RouterFunctions;
import org.springframework.web.reactive.function.server.ServerResponse;

/** Metrics (Micrometer, scraped at /actuator/prometheus) and the admin dashboard. */
@Configuration(proxyBeanMethods = false)
public class ObservabilityConfiguration {

	/**
	 * @param apiKey when set, /admin and its API need this key (Authorization: Bearer, or ?key= for the page)
	 * @param streamInterval how often the dashboard stream sends a snapshot
	 */
	@ConfigurationProperties("blockserve.admin")
	public record AdminProperties(String apiKey, @DefaultValue("250ms") Duration streamInterval) {
	}

	@Bean
	EngineMetrics engineMetrics(MeterRegistry registry, ServedModel served) {
		return new EngineMetrics(registry, served.name());
	}

	@Bean
	MeterBinder engineGauges(EngineMetrics metrics, Engine engine) {
		return registry -> metrics.bind(registry, engine);
	}

	@Bean
	AdminApi adminApi(Engine engine, ServedModel served, AdminProperties props) {
		return new AdminApi(engine, served.name(), props.streamInterval());
	}

	@Bean
	RouterFunction<ServerResponse> adminRoutes(AdminApi admin) {
		return RouterFunctions.route()
			.GET("/admin", admin::page)
			.GET("/admin/", admin::page)
			.GET("/admin/api/blocks", admin::blocks)
			.GET("/admin/api/stream", admin::stream)
			.build();
	}

	@Bean
	@Order(Ordered.HIGHEST_PRECEDENCE + 11)
	ApiKeyFilter adminKeyFilter(AdminProperties props) {
		return new ApiKeyFilter(props.apiKey() == null ? List.of() : List.of(props.apiKey()), List.of("/admin"), "admin");
	}
}
