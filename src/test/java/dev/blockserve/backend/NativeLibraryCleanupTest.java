package dev.blockserve.backend;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A library loaded from a jar is extracted to a temporary folder, and nothing of it is left once the JVM
 * exits. Before the fix every start left an empty {@code blockserve-native*} folder behind; and a process
 * killed outright (no shutdown hook runs) left its 2 MB folder for good, until a later start learned to
 * delete folders whose process has ended.
 */
class NativeLibraryCleanupTest {

	/**
	 * The child JVM's main: loads the CPU library from the jar on its class path, then exits (or, given
	 * "hold", waits to be killed).
	 */
	public static void main(String[] args) throws InterruptedException {
		try (CpuBackend b = new CpuBackend(1)) {
			System.out.println("loaded, threads=" + b.threads());
			System.out.flush();
			if (args.length > 0 && args[0].equals("hold")) {
				Thread.sleep(600_000);
			}
		}
	}

	@Test
	void extractedLibrariesAreDeletedAtExit(@TempDir Path tmp) throws Exception {
		Path temp = Files.createDirectory(tmp.resolve("java-tmp"));
		String output = run(child(tmp, temp));
		assertThat(output).contains("loaded");
		assertThat(extractionFolders(temp)).as("left in java.io.tmpdir").isEmpty();
	}

	@Test
	void aKilledProcessesFolderIsDeletedByTheNextStartAndALiveOnesIsKept(@TempDir Path tmp) throws Exception {
		Path temp = Files.createDirectory(tmp.resolve("java-tmp"));
		List<String> child = child(tmp, temp);
		List<String> holding = new java.util.ArrayList<>(child);
		holding.add("hold");
		Process held = new ProcessBuilder(holding).redirectErrorStream(true).start();
		try {
			String first = new java.io.BufferedReader(new java.io.InputStreamReader(held.getInputStream())).readLine();
			assertThat(first).as("the holding child's first line").startsWith("loaded");
			List<String> live = extractionFolders(temp);
			assertThat(live).as("the live child's folder").hasSize(1);
			// another start while it lives keeps its folder (its lock is held) and deletes only its own
			run(child);
			assertThat(extractionFolders(temp)).isEqualTo(live);
			assertThat(temp.resolve(live.get(0)).resolve("libblockserve_cpu.so")).isRegularFile();
			held.destroyForcibly(); // SIGKILL: no shutdown hook runs
			assertThat(held.waitFor(30, TimeUnit.SECONDS)).isTrue();
			assertThat(extractionFolders(temp)).as("the killed child's folder, left").isEqualTo(live);
			run(child);
			assertThat(extractionFolders(temp)).as("left in java.io.tmpdir after the next start").isEmpty();
		}
		finally {
			held.destroyForcibly();
			held.waitFor(30, TimeUnit.SECONDS);
		}
	}

	@Test
	void staleRemovalLeavesFoldersWithoutALockFileAndLinksAlone(@TempDir Path tmp) throws Exception {
		Path noLock = Files.createDirectory(tmp.resolve("blockserve-native1"));
		Files.writeString(noLock.resolve("libx.so"), "x");
		Path target = Files.createDirectory(tmp.resolve("elsewhere"));
		Files.writeString(target.resolve(NativeLibrary.LOCK), "");
		Files.writeString(target.resolve("keep"), "k");
		Files.createSymbolicLink(tmp.resolve("blockserve-native2"), target);
		Path stale = Files.createDirectory(tmp.resolve("blockserve-native3"));
		Files.writeString(stale.resolve(NativeLibrary.LOCK), "");
		Files.writeString(stale.resolve("libblockserve_cpu.so"), "y");
		assertThat(NativeLibrary.removeStale(tmp)).isEqualTo(1);
		assertThat(stale).doesNotExist();
		assertThat(noLock.resolve("libx.so")).isRegularFile();
		assertThat(target.resolve("keep")).isRegularFile();
		assertThat(tmp.resolve("blockserve-native2")).exists();
	}

	private static List<String> extractionFolders(Path temp) throws java.io.IOException {
		try (Stream<Path> left = Files.list(temp)) {
			return left.map(f -> f.getFileName().toString()).filter(n -> n.startsWith("blockserve-")).sorted().toList();
		}
	}

	private static String run(List<String> command) throws Exception {
		Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
		String output = new String(p.getInputStream().readAllBytes());
		assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
		assertThat(p.exitValue()).as(output).isZero();
		return output;
	}

	/** The command of a child JVM whose CPU library can only come from a jar, extracting into {@code temp}. */
	private static List<String> child(Path tmp, Path temp) throws Exception {
		// the JNI library and the per-level kernel libraries it opens, as the real jar holds them
		String dir = "native/" + NativeLibrary.platform() + "/";
		Path jar = tmp.resolve("natives.jar");
		try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar));
				Stream<Path> libs = Files.list(Path.of("target", "classes", dir))) {
			for (Path built : (Iterable<Path>) libs::iterator) {
				out.putNextEntry(new JarEntry(dir + built.getFileName()));
				Files.copy(built, out);
				out.closeEntry();
			}
		}
		// the jar first, so the library resolves to a jar: URL and must be extracted
		String cp = jar + java.io.File.pathSeparator + Path.of("target", "test-classes").toAbsolutePath()
				+ java.io.File.pathSeparator + onlyClasses(tmp);
		return List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Djava.io.tmpdir=" + temp,
				"-cp", cp, NativeLibraryCleanupTest.class.getName());
	}

	/** target/classes without its native folder, so the library can only come from the jar. */
	private static Path onlyClasses(Path tmp) throws Exception {
		Path jar = tmp.resolve("classes.jar");
		Path root = Path.of("target", "classes");
		try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar)); Stream<Path> all = Files.walk(root)) {
			for (Path f : (Iterable<Path>) all::iterator) {
				String name = root.relativize(f).toString().replace('\\', '/');
				if (Files.isRegularFile(f) && name.endsWith(".class")) {
					out.putNextEntry(new JarEntry(name));
					Files.copy(f, (OutputStream) out);
					out.closeEntry();
				}
			}
		}
		return jar;
	}
}
