package dev.blockserve.backend;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Loads the project's JNI libraries. The build puts them in the jar under
 * {@code native/<os>-<arch>/lib<name>.so}; a library found inside a jar is copied to a temporary file
 * first, since the dynamic linker can only open real files (one folder per process, libraries of
 * every device in it, deleted when the JVM exits). {@code -Dblockserve.native.dir=DIR} loads
 * from a folder instead (for a library built separately, for example for another CPU).
 * Loading is synchronized, so any thread may trigger it.
 */
public final class NativeLibrary {

	private static final ConcurrentHashMap<String, Path> LOADED = new ConcurrentHashMap<>();

	private NativeLibrary() {
	}

	/** The platform folder name, matching what native/CMakeLists.txt produces. */
	public static String platform() {
		String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
		if (os.startsWith("linux")) {
			os = "linux";
		}
		else if (os.startsWith("mac")) {
			os = "darwin";
		}
		String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
		if (arch.equals("amd64")) {
			arch = "x86_64";
		}
		else if (arch.equals("arm64")) {
			arch = "aarch64";
		}
		return os + "-" + arch;
	}

	/** Loads lib{name}.so once; the message of a failure names the file, the platform and what to install. */
	public static void load(String name) {
		load(name, List.of());
	}

	/**
	 * Loads lib{name}.so once, with the libraries it opens itself ({@code companions}, those of them this
	 * build has) put in the same folder; returns that folder.
	 */
	public static Path load(String name, List<String> companions) {
		return LOADED.computeIfAbsent(name, n -> {
			Path lib = doLoad(n);
			for (String c : companions) {
				place(c, lib.getParent());
			}
			return lib.getParent();
		});
	}

	/** Copies a companion library from the jar beside {@code dir}'s library, when the build has it. */
	private static void place(String name, Path dir) {
		if (System.getProperty("blockserve.native.dir") != null) {
			return; // the folder given holds them, or the library says which one is missing
		}
		String file = System.mapLibraryName(name);
		URL url = NativeLibrary.class.getClassLoader().getResource("native/" + platform() + "/" + file);
		if (url == null || "file".equals(url.getProtocol())) {
			return; // not built for this platform, or already a file in the same folder
		}
		Path out = dir.resolve(file);
		try (InputStream in = url.openStream()) {
			Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
		}
		catch (IOException e) {
			throw new BackendException("Cannot extract native library " + url + ": " + e.getMessage(), e);
		}
	}

	private static Path doLoad(String name) {
		String file = System.mapLibraryName(name);
		String platform = platform();
		String dir = System.getProperty("blockserve.native.dir");
		Path path;
		if (dir != null) {
			path = Path.of(dir, file);
			if (!Files.isRegularFile(path)) {
				throw new BackendException("Native library " + path + " not found (blockserve.native.dir=" + dir + ")");
			}
		}
		else {
			String resource = "native/" + platform + "/" + file;
			URL url = NativeLibrary.class.getClassLoader().getResource(resource);
			if (url == null) {
				throw new BackendException("Native library " + resource + " is not in this build for platform " + platform
						+ ". Build blockserve on this machine (needs a C++17 compiler, CMake and OpenMP"
						+ (name.contains("cuda") ? ", and the CUDA toolkit's nvcc" : "") + ") with ./mvnw package");
			}
			path = toFile(url, file);
		}
		try {
			System.load(path.toAbsolutePath().toString());
		}
		catch (UnsatisfiedLinkError e) {
			throw new BackendException("Cannot load native library " + path + " on " + platform + ": " + e.getMessage()
					+ (name.contains("cuda") ? ". It needs an NVIDIA driver (libcuda.so.1)"
							: ". It needs the OpenMP runtime (Debian/Ubuntu: apt-get install libgomp1)"),
					e);
		}
		return path.toAbsolutePath();
	}

	/** This process's folder for libraries extracted from the jar; created once, deleted at exit. */
	private static Path extractDir;

	private static synchronized Path extractDir() throws IOException {
		if (extractDir == null) {
			Path dir = Files.createTempDirectory("blockserve-native");
			// One hook deletes the folder's files and then the folder (deleteOnExit would try the folder
			// first, while it still holds the libraries, and leave it behind).
			Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir), "blockserve-native-cleanup"));
			extractDir = dir;
		}
		return extractDir;
	}

	private static void deleteTree(Path dir) {
		try (var files = Files.list(dir)) {
			for (Path f : (Iterable<Path>) files::iterator) {
				Files.deleteIfExists(f);
			}
			Files.deleteIfExists(dir);
		}
		catch (IOException e) {
			// at exit there is no one left to tell; the OS's temp cleaning takes what remains
		}
	}

	private static Path toFile(URL url, String file) {
		try {
			if ("file".equals(url.getProtocol())) {
				return Path.of(url.toURI());
			}
			Path out = extractDir().resolve(file);
			try (InputStream in = url.openStream()) {
				Files.copy(in, out, StandardCopyOption.REPLACE_EXISTING);
			}
			return out;
		}
		catch (IOException | URISyntaxException e) {
			throw new BackendException("Cannot extract native library " + url + ": " + e.getMessage(), e);
		}
	}
}
