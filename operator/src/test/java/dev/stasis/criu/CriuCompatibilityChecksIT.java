package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.cli.Main;
import dev.stasis.testing.CpuinfoImages;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real CRIU's answers that node profiles and the restore pre-flight are built on. */
class CriuCompatibilityChecksIT {
  final Criu criu = new Criu(Main.criuPath(null), Map.of());
  @TempDir Path dir;

  @Test
  void thisCpuCanRunWhatItDumped() throws Exception {
    byte[] image = criu.dumpCpuinfo(dir.resolve("dump"));
    assertThat(image).hasSizeGreaterThan(16);
    assertThat(criu.checkCpuinfo(image, dir.resolve("check"), false)).isEmpty();
    assertThat(criu.checkCpuinfo(image, dir.resolve("strict"), true)).isEmpty();
  }

  @Test
  void aDoctoredCpuWithInstructionsNoCpuHasIsRefusedWithCriusReason() throws Exception {
    byte[] image = criu.dumpCpuinfo(dir.resolve("dump"));
    byte[] doctored = CpuinfoImages.withCapabilities(image, CpuinfoImages.NO_CPU_HAS_ALL);

    assertThat(criu.checkCpuinfo(doctored, dir.resolve("check"), false))
        .hasValueSatisfying(problem -> assertThat(problem).contains("CPU instruction capabilities do not match run time"));
  }

  /** What the pre-flight compares with: every file CRIU will reopen, sized where CRIU checks the size. */
  @Test
  void aDumpRecordsTheFilesItWillReopen() throws Exception {
    Path log = dir.resolve("log.lammps");
    try (var writer = Workloads.startInPidNamespace("openfile", log.toString())) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(log) && Files.size(log) > 0);
      criu.dump(new DumpOptions((int) writer.pid(), dir.resolve("images"), dir.resolve("work"), false, false,
          TreeOptions.PLAIN, Duration.ofSeconds(60)));

      List<RegularFiles.RegularFile> files = RegularFiles.read(dir.resolve("images"));

      assertThat(file(files, log)).satisfies(f -> {
        assertThat(f.size()).as("O_WRONLY|O_APPEND: no size check").isNull();
        assertThat(f.writable()).isTrue();
        assertThat(f.isRegularFile()).contains(true);
      });
      Path exe = Workloads.binary("openfile");
      assertThat(file(files, exe)).satisfies(f -> {
        assertThat(f.size()).isEqualTo(Files.size(exe));
        assertThat(f.writable()).isFalse();
      });
      assertThat(files).anyMatch(f -> f.path().contains("libc.so") && f.size() != null && !f.writable());
    }
  }

  /** A segment mapped shared and writable, then closed, is a file CRIU reopens: writable, with its size. */
  @Test
  void aDumpRecordsASharedWritableMappingAsAWritableFile() throws Exception {
    Path segment = Path.of("/dev/shm", "stasis-criu-" + java.util.UUID.randomUUID());
    Path log = dir.resolve("job.log");
    try (var job = Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000", "5")) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(log) && Files.size(log) > 0);
      criu.dump(new DumpOptions((int) job.pid(), dir.resolve("images"), dir.resolve("work"), false, false,
          TreeOptions.PLAIN, Duration.ofSeconds(60)));

      List<RegularFiles.RegularFile> files = RegularFiles.read(dir.resolve("images"));

      assertThat(file(files, segment)).satisfies(f -> {
        assertThat(f.size()).isEqualTo(64 * 1024L);
        assertThat(f.writable()).isTrue();
        assertThat(f.isRegularFile()).contains(true);
      });
      assertThat(file(files, log)).satisfies(f -> {
        // the job went on writing after the dump (--leave-running)
        assertThat(f.size()).as("open for writing, not appending: CRIU checks the size").isPositive()
            .isLessThanOrEqualTo(Files.size(log));
        assertThat(f.writable()).isTrue();
      });
    } finally {
      Files.deleteIfExists(segment);
    }
  }

  private static RegularFiles.RegularFile file(List<RegularFiles.RegularFile> files, Path path) {
    return files.stream().filter(f -> f.path().equals(path.toString())).findFirst()
        .orElseThrow(() -> new AssertionError(path + " not in " + files));
  }

  @Test
  void listsTheFeaturesThisNodeHasAndLacks() {
    Criu.Features features = criu.features();
    assertThat(features.present()).contains("mnt_id", "timens", "network_lock_nftables");
    // Soft-dirty tracking is off on these VMs (ENVIRONMENT.md), and CRIU says so.
    assertThat(features.missing()).contains("mem_dirty_track");
    assertThat(features.present().size() + features.missing().size()).isGreaterThan(30);
  }
}
