package dev.blockserve.api;

import java.util.List;
import java.util.stream.Stream;

import dev.blockserve.BlockserveApplication;
import dev.blockserve.support.RawHttp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * With API and admin keys set, every spelling of a protected route answers 401 without its key: the
 * decision is taken on the canonical path, not on the string the client sent. Before the fix, percent-
 * encoded spellings such as {@code /%761/completions} reached the handlers without any key.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/stories260K", "blockserve.kv-cache.num-blocks=256",
				"blockserve.api.api-keys=api-secret", "blockserve.admin.api-key=admin-secret" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ProtectedRoutesTest {

	@LocalServerPort
	int port;

	static final String BODY = "{\"model\":\"stories260K\",\"prompt\":\"Hi\",\"max_tokens\":2}";

	static Stream<Arguments> spellings() {
		List<String> post = List.of("/v1/completions", "/%761/completions", "/%76%31/%63ompletions", "/%2576%2531/completions",
				"//v1/completions", "/v1//completions", "/./v1/completions", "/v1/./completions", "/x/../v1/completions",
				"/health/../v1/completions", "/admin/../v1/completions", "/v1/completions/", "/v1/completions;a=b",
				"/v1;x=y/completions", "/V1/completions", "/v1/COMPLETIONS", "/v1/completions%2f", "/v1%2fcompletions",
				"/v1/chat/completions", "/v1/chat//completions", "/v1/chat/%63ompletions", "/%74okenize", "/tokenize/",
				"/TOKENIZE", "/tokenize;x", "/%2574okenize", "/detokenize", "/%64etokenize", "/v1/completions?key=api-secret");
		List<String> get = List.of("/v1/models", "/v1/models/", "/%76%31/models", "/v1/models;x", "/admin/api/blocks",
				"/%61dmin/api/blocks", "/%2561dmin/api/blocks", "/admin/api/blocks/", "/ADMIN/api/blocks",
				"/admin//api/blocks", "/admin/./api/blocks", "/admin/api/blocks;x", "/x/../admin/api/blocks",
				"/admin/api/stream", "/admin/%61pi/stream", "/admin/api/blocks?key=admin-secret");
		return Stream.concat(post.stream().map(p -> Arguments.of("POST", p)), get.stream().map(p -> Arguments.of("GET", p)));
	}

	@ParameterizedTest(name = "{0} {1}")
	@MethodSource("spellings")
	void everySpellingOfAProtectedRouteNeedsItsKey(String method, String path) throws Exception {
		RawHttp.Response r = RawHttp.request(port, method, path, null, method.equals("POST") ? BODY : null);
		assertThat(r.status()).as("%s %s without a key", method, path).isEqualTo(401);
		assertThat(r.body()).contains("\"error\"").contains("invalid_api_key");
	}

	@Test
	void theKeysOpenTheirRoutesAndPublicRoutesStayOpen() throws Exception {
		assertThat(RawHttp.request(port, "GET", "/v1/models", "Authorization: Bearer api-secret\r\n", null).status())
			.isEqualTo(200);
		assertThat(RawHttp.request(port, "GET", "/%76%31/models", "Authorization: Bearer api-secret\r\n", null).status())
			.as("an encoded spelling with the key reaches the route").isEqualTo(200);
		assertThat(RawHttp.request(port, "GET", "/v1/models", "Authorization: Bearer wrong\r\n", null).status())
			.isEqualTo(401);
		assertThat(RawHttp.request(port, "GET", "/admin/api/blocks", "Authorization: Bearer api-secret\r\n", null)
			.status()).as("the API key does not open the admin API").isEqualTo(401);
		assertThat(RawHttp.request(port, "GET", "/admin/api/blocks", "Authorization: Bearer admin-secret\r\n", null)
			.status()).isEqualTo(200);
		assertThat(RawHttp.request(port, "GET", "/health", null, null).status()).isEqualTo(200);
		assertThat(RawHttp.request(port, "GET", "/actuator/health", null, null).status()).isEqualTo(200);
		assertThat(RawHttp.request(port, "GET", "/admin", null, null).status()).as("the page holds no data").isEqualTo(200);
	}
}
