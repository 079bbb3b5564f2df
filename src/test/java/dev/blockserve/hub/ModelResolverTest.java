package dev.blockserve.hub;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import com.sun.net.httpserver.HttpServer;
import dev.blockserve.support.SharedModels;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import dev.blockserve.model.ModelLoadException;
import dev.blockserve.model.LlamaModel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Resolving a repository id against a local server that serves files in the Hub's URL layout. */
class ModelResolverTest {

	static final String SHA = "0123456789abcdef0123456789abcdef01234567";

	@TempDir
	Path cache;

	HttpServer server;

	final List<String> requests = new CopyOnWriteArrayList<>();

	final List<String> authHeaders = new CopyOnWriteArrayList<>();

	@BeforeEach
	void startHub() throws IOException {
		Path src = SharedModels.dir("tiny-random-llama");
		server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
		server.createContext("/", ex -> {
			String path = ex.getRequestURI().getPath();
			requests.add(path);
			authHeaders.add(String.valueOf(ex.getRequestHeaders().getFirst("Authorization")));
			byte[] body;
			int status = 200;
			if (path.equals("/api/models/test-org/tiny/revision/main")) {
				StringBuilder sib = new StringBuilder();
				for (String f : List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
						"tokenizer_config.json", "golden.json", "README.md")) {
					sib.append(sib.length() > 0 ? "," : "").append("{\"rfilename\":\"").append(f).append("\"}");
				}
				body = ("{\"id\":\"test-org/tiny\",\"sha\":\"" + SHA + "\",\"siblings\":[" + sib + "]}").getBytes();
			}
			else if (path.startsWith("/test-org/tiny/resolve/" + SHA + "/")) {
				Path f = src.resolve(path.substring(path.lastIndexOf('/') + 1));
				body = Files.exists(f) ? Files.readAllBytes(f) : new byte[0];
				status = Files.exists(f) ? 200 : 404;
			}
			else {
				body = "{\"error\":\"Repository not found\"}".getBytes();
				status = 404;
			}
			ex.sendResponseHeaders(status, body.length);
			try (OutputStream out = ex.getResponseBody()) {
				out.write(body);
			}
		});
		server.start();
	}

	@AfterEach
	void stop() {
		server.stop(0);
	}

	Map<String, String> env(boolean offline) {
		Map<String, String> env = new HashMap<>();
		env.put("HF_HUB_CACHE", cache.toString());
		env.put("HF_ENDPOINT", "http://127.0.0.1:" + server.getAddress().getPort());
		env.put("HF_TOKEN", "hf_test_token");
		if (offline) {
			env.put("HF_HUB_OFFLINE", "1");
		}
		return env;
	}

	@Test
	void downloadsIntoTheHubCacheLayoutThenReusesIt() {
		List<String> progress = new ArrayList<>();
		Path dir = new ModelResolver(env(false), progress::add).resolve("test-org/tiny");
		assertThat(dir).isEqualTo(cache.resolve("models--test-org--tiny").resolve("snapshots").resolve(SHA));
		assertThat(dir.resolve("model.safetensors")).isRegularFile();
		assertThat(dir.resolve("README.md")).doesNotExist();
		assertThat(dir.resolve("golden.json")).doesNotExist();
		assertThat(cache.resolve("models--test-org--tiny/refs/main")).hasContent(SHA);
		assertThat(progress).anyMatch(p -> p.contains("test-org/tiny/model.safetensors") && p.contains("100%"));
		assertThat(authHeaders).allMatch(h -> h.equals("Bearer hf_test_token"));
		// The downloaded directory is a loadable model.
		try (var backend = new dev.blockserve.backend.CpuBackend(1); var m = LlamaModel.load(dir, backend, 0)) {
			assertThat(m.config().vocabSize()).isEqualTo(290);
		}
		// Second time: served from the cache, offline, without a request.
		requests.clear();
		Path again = new ModelResolver(env(true), progress::add).resolve("test-org/tiny");
		assertThat(again).isEqualTo(dir);
		assertThat(requests).isEmpty();
	}

	@Test
	void offlineWithoutCachedFilesSaysWhatToDo() {
		assertThatThrownBy(() -> new ModelResolver(env(true), s -> {
		}).resolve("test-org/tiny")).isInstanceOf(ModelLoadException.class)
			.hasMessageContaining("not in the Hugging Face cache")
			.hasMessageContaining("HF_HUB_OFFLINE")
			.hasMessageContaining("huggingface-cli download test-org/tiny");
	}

	@Test
	void unknownRepositoryAndUnreachableHub() {
		assertThatThrownBy(() -> new ModelResolver(env(false), s -> {
		}).resolve("test-org/missing")).hasMessageContaining("not found");
		Map<String, String> env = env(false);
		env.put("HF_ENDPOINT", "http://127.0.0.1:1");
		assertThatThrownBy(() -> new ModelResolver(env, s -> {
		}).resolve("test-org/tiny")).hasMessageContaining("Cannot download test-org/tiny")
			.hasMessageContaining("local model directory");
	}

	@Test
	void localDirectoryIsUsedAsIs() {
		Path d = SharedModels.dir("stories260K");
		assertThat(new ModelResolver(env(true), s -> {
		}).resolve(d.toString())).isEqualTo(d);
		assertThatThrownBy(() -> new ModelResolver(env(true), s -> {
		}).resolve("/no/such/dir")).hasMessageContaining("/no/such/dir does not exist");
		assertThatThrownBy(() -> new ModelResolver(env(true), s -> {
		}).resolve("no such model")).hasMessageContaining("neither a directory nor a Hugging Face repository id");
	}

	/** A download failure says what failed: an unknown host is not reported as a refused connection. */
	@Test
	void downloadFailuresAreDescribedByTheirCause() {
		java.io.IOException dns = new java.net.ConnectException("connect failed");
		dns.initCause(new java.net.UnknownHostException("huggingface.co"));
		assertThat(ModelResolver.describe(dns, "https://huggingface.co")).isEqualTo(
				"the host huggingface.co cannot be resolved (no DNS or no network)");
		assertThat(ModelResolver.describe(new java.net.ConnectException("Connection refused"), "http://127.0.0.1:9"))
			.isEqualTo("the connection to 127.0.0.1 was refused");
		assertThat(ModelResolver.describe(new java.net.http.HttpConnectTimeoutException("slow"), "https://hf.example"))
			.isEqualTo("no answer from hf.example in time");
	}
}
