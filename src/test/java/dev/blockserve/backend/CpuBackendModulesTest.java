package dev.blockserve.backend;

import java.nio.file.Path;
import java.util.List;

import dev.blockserve.support.ChildJvm;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CPU backend in a runtime of only java.base, java.logging and jdk.unsupported (a jlink'd image such
 * as native/tests/gpu/run.sh's): it must start, without packed forms, where the machine's memory size
 * (jdk.management) cannot be read. It failed with NoClassDefFoundError before the lookup was guarded.
 */
class CpuBackendModulesTest {

	@Test
	void startsWithoutTheManagementModules() throws Exception {
		Path shipped = Path.of("target", "classes", "native", NativeLibrary.platform());
		String report = ChildJvm.run(shipped, List.of("--limit-modules", "java.base,java.logging,jdk.unsupported",
				Child.class.getName()), 2);
		assertThat(report).contains("level ").contains("packed bytes 0");
	}

	/** Runs in the child JVM: a backend, its level, and the bytes of a packed form of one small BF16 matrix. */
	public static final class Child {
		public static void main(String[] args) {
			try (CpuBackend cpu = new CpuBackend(1); NativeBuffer w = cpu.allocate(64 * 64, DType.BF16)) {
				System.out.println("level " + cpu.level() + ", packed bytes " + cpu.packForDecode(w, 64, 64));
			}
		}
	}
}
