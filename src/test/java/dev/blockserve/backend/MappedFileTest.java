package dev.blockserve.backend;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Weight files mapped as they are or moved into huge pages ({@link WeightPages}): same bytes, told apart in the log. */
class MappedFileTest {

	@TempDir
	Path tmp;

	/** 5 MiB and 12 bytes: more than two huge pages, a length that is not a whole page. */
	private Path file(long seed) throws Exception {
		byte[] b = new byte[(5 << 20) + 12];
		new Random(seed).nextBytes(b);
		return Files.write(tmp.resolve("w" + seed + ".bin"), b);
	}

	private static void assertHolds(MappedFile m, Path file) throws Exception {
		byte[] want = Files.readAllBytes(file);
		int[] got = new int[want.length / 4];
		new CpuKernels().readInts(m.address(0), got, got.length);
		ByteBuffer bb = ByteBuffer.wrap(want).order(ByteOrder.LITTLE_ENDIAN);
		for (int i = 0; i < got.length; i++) {
			if (got[i] != bb.getInt(i * 4)) {
				throw new AssertionError("int " + i + " differs: " + got[i] + " != " + bb.getInt(i * 4));
			}
		}
	}

	@Test
	void hugeCopiesTheFileIntoHugePagesWhereTheMachineHasThem() throws Exception {
		new CpuBackend(1).close(); // loads the library
		Path f = file(1);
		try (MappedFile m = MappedFile.map(f, WeightPages.HUGE)) {
			assertHolds(m, f);
			if (HugePages.available()) {
				assertThat(m.placement()).matches("copied into memory, \\d+% in 2 MiB pages \\(the file's mapping had .*\\)");
				// this process's smaps finds the copy's mapping (how much of it is huge is the kernel's to say)
				assertThat(HugePages.hugeBytes(m.address(0), m.length())).isBetween(0L, 6L << 20);
			}
			else {
				assertThat(m.placement()).endsWith("(not copied: transparent huge pages are off)");
			}
		}
	}

	@Test
	void autoKeepsSmallFilesMappedAndMappedNeverLooks() throws Exception {
		new CpuBackend(1).close();
		Path f = file(2);
		try (MappedFile auto = MappedFile.map(f, WeightPages.AUTO); MappedFile mapped = MappedFile.map(f, WeightPages.MAPPED)) {
			assertHolds(auto, f);
			assertHolds(mapped, f);
			assertThat(auto.placement()).startsWith("mapped, ").contains("% in 2 MiB pages (not copied: ")
				.containsAnyOf("smaller than 64 MiB", "transparent huge pages are off");
			assertThat(mapped.placement()).isEqualTo("mapped");
		}
	}

	/** A file on tmpfs is memory already: a copy would hold it twice, since tmpfs pages cannot be dropped. */
	@Test
	void autoNeverCopiesAFileThatLivesInMemory() throws Exception {
		Path shm = Path.of("/dev/shm");
		Assumptions.assumeTrue(Files.isDirectory(shm) && Files.getFileStore(shm).type().equals("tmpfs") && HugePages.available(),
				"no tmpfs at /dev/shm or no transparent huge pages");
		new CpuBackend(1).close();
		Path f = Files.createTempFile(shm, "blockserve-mapped-file-test", ".bin");
		try {
			byte[] chunk = new byte[1 << 20];
			new Random(4).nextBytes(chunk);
			try (var out = Files.newOutputStream(f)) {
				for (long n = 0; n < MappedFile.AUTO_MIN_BYTES; n += chunk.length) {
					out.write(chunk);
				}
			}
			try (MappedFile m = MappedFile.map(f, WeightPages.AUTO)) {
				// (where tmpfs itself gives huge pages, shmem_enabled=always, the mapping is kept for that reason)
				assertThat(m.placement()).startsWith("mapped, ").satisfiesAnyOf(
						p -> assertThat(p).endsWith("(not copied: the file lives in memory (tmpfs), whose pages a copy could not release)"),
						p -> assertThat(p).matches("mapped, (9\\d|100)% in 2 MiB pages"));
			}
		}
		finally {
			Files.deleteIfExists(f);
		}
	}

	@Test
	void aClosedMappingRefusesAddressesAndClosesOnce() throws Exception {
		new CpuBackend(1).close();
		MappedFile m = MappedFile.map(file(3), WeightPages.HUGE);
		m.close();
		m.close();
		assertThatThrownBy(() -> m.address(0)).isInstanceOf(IllegalStateException.class).hasMessageContaining("no longer mapped");
	}

	@Test
	void smapsHugePagesAreSummedOverTheMappingsInTheRange() {
		List<String> smaps = List.of(
				"7f0000000000-7f0000400000 r--p 00000000 fd:00 12 /models/a.safetensors",
				"Size:               4096 kB",
				"AnonHugePages:         0 kB",
				"FilePmdMapped:      2048 kB",
				"VmFlags: rd mr mw me hg",
				"7f0000400000-7f0000401000 r--p 00400000 fd:00 12 /models/a.safetensors",
				"FilePmdMapped:         0 kB",
				"7f0000600000-7f0000800000 rw-p 00000000 00:00 0",
				"AnonHugePages:      2048 kB",
				"ShmemPmdMapped:        0 kB");
		// the file's two mappings (its last page past an unaligned length), not the anonymous one after it
		assertThat(HugePages.hugeBytes(smaps, 0x7f0000000000L, 0x400010L)).isEqualTo(2048L << 10);
		assertThat(HugePages.hugeBytes(smaps, 0x7f0000600000L, 2L << 20)).isEqualTo(2048L << 10);
		assertThat(HugePages.hugeBytes(smaps, 0x7f0000000000L, 8L << 20)).isEqualTo(4096L << 10);
		assertThat(HugePages.hugeBytes(smaps, 0x7e0000000000L, 4096)).isEqualTo(-1);
	}

	@Test
	void transparentHugePagesAreAvailableUnlessNever() throws Exception {
		Path f = tmp.resolve("enabled");
		Files.writeString(f, "always [madvise] never\n");
		assertThat(HugePages.available(f)).isTrue();
		Files.writeString(f, "[always] madvise never\n");
		assertThat(HugePages.available(f)).isTrue();
		Files.writeString(f, "always madvise [never]\n");
		assertThat(HugePages.available(f)).isFalse();
		assertThat(HugePages.available(tmp.resolve("absent"))).isFalse();
	}

	@Test
	void memoryHeadroomIsTheHostsOrTheContainersWhicheverIsLess() throws Exception {
		Path meminfo = Files.writeString(tmp.resolve("meminfo"), "MemTotal: 24000000 kB\nMemAvailable:   20000000 kB\n");
		assertThat(HugePages.meminfoAvailable(meminfo)).isEqualTo(20000000L << 10);
		Path cg = Files.createDirectories(tmp.resolve("cgroup"));
		Files.writeString(cg.resolve("memory.max"), "max\n");
		assertThat(HugePages.cgroupAvailable(cg)).isEqualTo(-1);
		Files.writeString(cg.resolve("memory.max"), "4294967296\n");
		Files.writeString(cg.resolve("memory.current"), "3221225472\n");
		Files.writeString(cg.resolve("memory.stat"), "anon 2147483648\nfile 1073741824\nkernel 0\n");
		// 4 GiB limit, 3 GiB charged of which 1 GiB page cache: 2 GiB can still be filled
		assertThat(HugePages.cgroupAvailable(cg)).isEqualTo(2L << 30);
		assertThat(HugePages.cgroupAvailable(tmp.resolve("no-cgroup"))).isEqualTo(-1);
	}

	@Test
	void anUnknownWeightPagesValueNamesTheProperty() {
		assertThat(WeightPages.parse(" Huge ")).isEqualTo(WeightPages.HUGE);
		assertThat(WeightPages.parse(null)).isEqualTo(WeightPages.AUTO);
		assertThatThrownBy(() -> WeightPages.parse("hugetlb")).isInstanceOf(IllegalArgumentException.class)
			.hasMessage("blockserve.weight-pages must be auto, huge or mapped, got 'hugetlb'");
	}
}
