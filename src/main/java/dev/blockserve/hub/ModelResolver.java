package dev.blockserve.hub;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Pattern;

import tools.jackson.databind.JsonNode;
import dev.blockserve.model.Json;
import dev.blockserve.model.ModelLoadException;

/**
 * Turns {@code blockserve.model} into a model directory: a local directory as it is, or a Hugging Face
 * repository id ({@code org/name}) looked up in the standard Hugging Face cache ({@code HF_HUB_CACHE}, or
 * {@code HF_HOME}/hub, or ~/.cache/huggingface/hub) and otherwise downloaded into it from
 * {@code HF_ENDPOINT} (default https://huggingface.co) with {@code HF_TOKEN}, unless {@code HF_HUB_OFFLINE}
 * is set. The cache layout is the Hub client's: models--org--name/refs/main holds the commit,
 * snapshots/&lt;commit&gt;/ holds the files, so models fetched by either are shared.
 * Used once at start-up, on the starting thread.
 */
public final class ModelResolver {

	private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][\\w.-]*/[\\w.-]+");

	private static final List<String> NEEDED = List.of("config.json", "tokenizer.json");

	private final Map<String, String> env;

	private final Consumer<String> progress;

	/** @param env the environment (System.getenv() in production; tests pass their own) */
	public ModelResolver(Map<String, String> env, Consumer<String> progress) {
		this.env = env;
		this.progress = progress;
	}

	public Path cacheDir() {
		String hub = env.get("HF_HUB_CACHE");
		if (hub != null && !hub.isBlank()) {
			return Path.of(hub);
		}
		String home = env.get("HF_HOME");
		if (home != null && !home.isBlank()) {
			return Path.of(home, "hub");
		}
		return Path.of(System.getProperty("user.home"), ".cache", "huggingface", "hub");
	}

	private boolean offline() {
		String v = env.get("HF_HUB_OFFLINE");
		return v != null && (v.equals("1") || v.equalsIgnoreCase("true") || v.equalsIgnoreCase("yes"));
	}

	private String endpoint() {
		String e = env.get("HF_ENDPOINT");
		return (e == null || e.isBlank() ? "https://huggingface.co" : e).replaceAll("/+$", "");
	}

	public Path resolve(String model) {
		Path local = Path.of(model);
		if (Files.isDirectory(local)) {
			return local;
		}
		if (!REPO_ID.matcher(model).matches()) {
			if (model.startsWith("/") || model.startsWith(".") || model.startsWith("~") || model.contains("\\")) {
				throw new ModelLoadException("blockserve.model: " + model + (Files.exists(local) ? " is not a directory"
						: " does not exist") + " (give a model folder: config.json, *.safetensors, tokenizer.json)");
			}
			throw new ModelLoadException("blockserve.model '" + model
					+ "' is neither a directory nor a Hugging Face repository id (org/name)");
		}
		Path repo = cacheDir().resolve("models--" + model.replace("/", "--"));
		Path cached = cachedSnapshot(repo);
		if (cached != null) {
			progress.accept("Using " + model + " from the Hugging Face cache: " + cached);
			return cached;
		}
		if (offline()) {
			throw new ModelLoadException("Model " + model + " is not in the Hugging Face cache (" + cacheDir()
					+ ") and HF_HUB_OFFLINE is set. Download it where there is network (huggingface-cli download "
					+ model + ") into that cache, or set blockserve.model to a local model directory.");
		}
		return download(model, repo);
	}

	private static Path cachedSnapshot(Path repo) {
		try {
			Path ref = repo.resolve("refs").resolve("main");
			if (!Files.isRegularFile(ref)) {
				return null;
			}
			Path snap = repo.resolve("snapshots").resolve(Files.readString(ref).strip());
			for (String f : NEEDED) {
				if (!Files.exists(snap.resolve(f))) {
					return null;
				}
			}
			return snap;
		}
		catch (IOException e) {
			return null;
		}
	}

	/** What went wrong, in words: the deepest cause that says it (an unknown host is not a refused connection). */
	static String describe(IOException e, String base) {
		String host = java.net.URI.create(base).getHost();
		for (Throwable c = e; c != null; c = c.getCause()) {
			if (c instanceof java.net.UnknownHostException || c instanceof java.nio.channels.UnresolvedAddressException) {
				return "the host " + host + " cannot be resolved (no DNS or no network)";
			}
			if (c instanceof java.net.http.HttpConnectTimeoutException || c instanceof java.net.http.HttpTimeoutException) {
				return "no answer from " + host + " in time";
			}
		}
		for (Throwable c = e; c != null; c = c.getCause()) {
			if (c instanceof java.net.ConnectException) {
				return "the connection to " + host + " was refused";
			}
		}
		return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
	}

	private Path download(String model, Path repo) {
		HttpClient http = HttpClient.newBuilder()
			.connectTimeout(Duration.ofSeconds(20))
			.followRedirects(HttpClient.Redirect.NORMAL)
			.build();
		String base = endpoint();
		try {
			JsonNode info = Json.MAPPER.readTree(get(http, base + "/api/models/" + model + "/revision/main", model)
				.readAllBytes());
			String sha = info.path("sha").asString("");
			if (sha.isEmpty()) {
				throw new ModelLoadException(base + " returned no commit for " + model);
			}
			List<String> files = new ArrayList<>();
			for (JsonNode s : info.path("siblings")) {
				String name = s.path("rfilename").asString("");
				if (wanted(name)) {
					files.add(name);
				}
			}
			for (String f : NEEDED) {
				if (!files.contains(f)) {
					throw new ModelLoadException("Hugging Face repository " + model + " has no " + f
							+ " (blockserve needs Hugging Face layout with safetensors weights)");
				}
			}
			Path snap = repo.resolve("snapshots").resolve(sha);
			Files.createDirectories(snap);
			for (String f : files) {
				Path target = snap.resolve(f);
				if (Files.exists(target)) {
					continue;
				}
				fetch(http, base + "/" + model + "/resolve/" + sha + "/" + f, target, model + "/" + f);
			}
			Files.createDirectories(repo.resolve("refs"));
			Files.writeString(repo.resolve("refs").resolve("main"), sha);
			return snap;
		}
		catch (IOException e) {
			throw new ModelLoadException("Cannot download " + model + " from " + base + ": " + describe(e, base)
					+ ". Check the network (or HF_ENDPOINT), set HF_TOKEN for gated models, or set blockserve.model "
					+ "to a local model directory.", e);
		}
		catch (InterruptedException e) {
			Thread.currentThread().interrupt();
			throw new ModelLoadException("Download of " + model + " interrupted", e);
		}
	}

	private static boolean wanted(String name) {
		return name.endsWith(".safetensors") || name.equals("model.safetensors.index.json")
				|| name.equals("config.json") || name.equals("generation_config.json") || name.equals("tokenizer.json")
				|| name.equals("tokenizer_config.json") || name.equals("special_tokens_map.json")
				|| name.equals("chat_template.jinja");
	}

	private InputStream get(HttpClient http, String url, String model) throws IOException, InterruptedException {
		HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(30));
		String token = env.get("HF_TOKEN");
		if (token != null && !token.isBlank()) {
			b.header("Authorization", "Bearer " + token);
		}
		HttpResponse<InputStream> r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
		if (r.statusCode() == 401 || r.statusCode() == 403) {
			r.body().close();
			throw new ModelLoadException("Access to " + model + " was refused (HTTP " + r.statusCode()
					+ "): for a gated or private model, set HF_TOKEN to a token that may read it");
		}
		if (r.statusCode() == 404) {
			r.body().close();
			throw new ModelLoadException("Hugging Face repository " + model + " was not found at " + url);
		}
		if (r.statusCode() / 100 != 2) {
			r.body().close();
			throw new IOException("HTTP " + r.statusCode() + " for " + url);
		}
		return r.body();
	}

	private void fetch(HttpClient http, String url, Path target, String label) throws IOException, InterruptedException {
		HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofHours(2));
		String token = env.get("HF_TOKEN");
		if (token != null && !token.isBlank()) {
			b.header("Authorization", "Bearer " + token);
		}
		HttpResponse<InputStream> r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
		if (r.statusCode() / 100 != 2) {
			r.body().close();
			throw new IOException("HTTP " + r.statusCode() + " for " + url);
		}
		long total = r.headers().firstValueAsLong("Content-Length").orElse(-1);
		Path tmp = target.resolveSibling(target.getFileName() + ".incomplete");
		Files.createDirectories(target.getParent());
		long done = 0;
		int lastDecile = -1;
		byte[] buf = new byte[1 << 20];
		try (InputStream in = r.body(); OutputStream out = Files.newOutputStream(tmp)) {
			int n;
			while ((n = in.read(buf)) > 0) {
				out.write(buf, 0, n);
				done += n;
				int decile = total > 0 ? (int) (done * 10 / total) : -1;
				if (decile != lastDecile && total > 0) {
					progress.accept(String.format("Downloading %s: %d%% (%.1f of %.1f MB)", label, decile * 10, done / 1e6,
							total / 1e6));
					lastDecile = decile;
				}
			}
		}
		if (total >= 0 && done != total) {
			Files.deleteIfExists(tmp);
			throw new IOException(label + ": got " + done + " of " + total + " bytes");
		}
		Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
		if (total < 0) {
			progress.accept(String.format("Downloaded %s (%.1f MB)", label, done / 1e6));
		}
	}
}
