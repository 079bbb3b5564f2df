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
 * exits. Before the fix every start left an empty {@code blockserve-native*} folder behind.
 */
class NativeLibraryCleanupTest {

	/** The child JVM's main: loads the CPU library from the jar on its class path, then exits. */
	public static void main(String[] args) {
		try (CpuBackend b = new CpuBackend(1)) {
			System.out.println("loaded, threads=" + b.threads());
		}
	}

	@Test
	void extractedLibrariesAreDeletedAtExit(@TempDir Path tmp) throws Exception {
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
		Path temp = Files.createDirectory(tmp.resolve("java-tmp"));
		// the jar first, so the library resolves to a jar: URL and must be extracted
		String cp = jar + java.io.File.pathSeparator + Path.of("target", "test-classes").toAbsolutePath()
				+ java.io.File.pathSeparator + onlyClasses(tmp);
		Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
				"-Djava.io.tmpdir=" + temp, "-cp", cp, NativeLibraryCleanupTest.class.getName())
			.redirectErrorStream(true)
			.start();
		String output = new String(p.getInputStream().readAllBytes());
		assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
		assertThat(p.exitValue()).as(output).isZero();
		assertThat(output).contains("loaded");
		try (Stream<Path> left = Files.list(temp)) {
			List<String> names = left.map(f -> f.getFileName().toString()).toList();
			assertThat(names).as("left in java.io.tmpdir").noneMatch(n -> n.startsWith("blockserve-native"));
		}
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
