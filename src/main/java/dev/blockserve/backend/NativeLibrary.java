package dev.blockserve.backend;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Loads the project's JNI libraries. The build puts them in the jar under
 * {@code native/<os>-<arch>/lib<name>.so}; a library found inside a jar is copied to a temporary file
 * first, since the dynamic linker can only open real files (one folder per process, libraries of
 * every device in it, deleted when the JVM exits, or by a later start when the process was killed).
 * {@code -Dblockserve.native.dir=DIR} loads
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

	/** In each extraction folder: locked by its process for as long as it lives. */
	static final String LOCK = ".lock";

	/**
	 * The lock on this process's folder, kept reachable: the OS releases it when the process ends, however
	 * it ends, which is what tells a later start that the folder is stale.
	 */
	private static FileChannel lockChannel;

	private static synchronized Path extractDir() throws IOException {
		if (extractDir == null) {
			Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
			// A process killed outright (SIGKILL, the OOM killer) runs no shutdown hook: a later start
			// deletes what it left.
			removeStale(tmp);
			// The folder gets its lock before it gets its scanned name, so no other start can see it unlocked.
			Path staging = Files.createTempDirectory(tmp, "blockserve-new");
			FileChannel channel = FileChannel.open(staging.resolve(LOCK), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
			channel.lock();
			Path dir = tmp.resolve("blockserve-native" + staging.getFileName().toString().substring("blockserve-new".length()));
			Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
			// One hook deletes the folder's files and then the folder (deleteOnExit would try the folder
			// first, while it still holds the libraries, and leave it behind).
			Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir), "blockserve-native-cleanup"));
			lockChannel = channel;
			extractDir = dir;
		}
		return extractDir;
	}

	/**
	 * Deletes the extraction folders in {@code tmp} whose process has ended: those whose lock file no one
	 * holds. A folder without a lock file, another user's folder, a symbolic link or one locked by a live
	 * process is left alone. Returns how many were deleted.
	 */
	static int removeStale(Path tmp) {
		int removed = 0;
		try (DirectoryStream<Path> dirs = Files.newDirectoryStream(tmp, "blockserve-native*")) {
			for (Path dir : dirs) {
				Path lock = dir.resolve(LOCK);
				if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) || !Files.isRegularFile(lock, LinkOption.NOFOLLOW_LINKS)) {
					continue;
				}
				try (FileChannel channel = FileChannel.open(lock, StandardOpenOption.WRITE); FileLock held = channel.tryLock()) {
					if (held != null && deleteTree(dir)) {
						removed++;
					}
				}
				catch (IOException | OverlappingFileLockException e) {
					// not ours to open, or locked by this very JVM: leave it
				}
			}
		}
		catch (IOException e) {
			// an unreadable temp folder: the extraction below reports what matters
		}
		return removed;
	}

	/** Deletes the folder's entries (links themselves, never what they point to), then the folder. */
	private static boolean deleteTree(Path dir) {
		try (var files = Files.list(dir)) {
			for (Path f : (Iterable<Path>) files::iterator) {
				Files.deleteIfExists(f);
			}
			return Files.deleteIfExists(dir);
		}
		catch (IOException e) {
			// at exit there is no one left to tell; the next start retries a folder left behind
			return false;
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
