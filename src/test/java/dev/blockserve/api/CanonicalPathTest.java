package dev.blockserve.api;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class CanonicalPathTest {

	@Test
	void spellingsOfOneRouteShareOneCanonicalForm() {
		for (String p : new String[] { "/v1/completions", "/%761/completions", "/%2576%2531/completions", "//v1//completions/",
				"/./v1/x/../completions", "/V1/Completions", "/v1;a=b/completions;c", "\\v1\\completions", "/v1%2Fcompletions" }) {
			assertThat(CanonicalPath.of(p)).as(p).isEqualTo("/v1/completions");
		}
		assertThat(CanonicalPath.of("/../../admin")).isEqualTo("/admin");
		assertThat(CanonicalPath.of("/v1/a+b")).isEqualTo("/v1/a+b");
		assertThat(CanonicalPath.of("/bad%zz")).isNull();
		assertThat(CanonicalPath.of("/bad%2")).isNull();
		assertThat(CanonicalPath.under("/admin/api", "/admin")).isTrue();
		assertThat(CanonicalPath.under("/adminx", "/admin")).isFalse();
	}
}
