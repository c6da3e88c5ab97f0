package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.cli.Main;
import dev.stasis.testing.CpuinfoImages;
import java.nio.file.Path;
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

  @Test
  void listsTheFeaturesThisNodeHasAndLacks() {
    Criu.Features features = criu.features();
    assertThat(features.present()).contains("mnt_id", "timens", "network_lock_nftables");
    // Soft-dirty tracking is off on these VMs (ENVIRONMENT.md), and CRIU says so.
    assertThat(features.missing()).contains("mem_dirty_track");
    assertThat(features.present().size() + features.missing().size()).isGreaterThan(30);
  }
}
