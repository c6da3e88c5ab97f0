package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ArchiveLayoutTest {
  private final ArchiveLayout layout = new ArchiveLayout("sims", "lammps-1", "0b6f3c1e");

  @Test
  void keepsEachCheckpointUnderItsOwnPrefix() {
    assertThat(layout.prefix()).isEqualTo("sims/lammps-1-0b6f3c1e/");
    assertThat(layout.archiveKey(ArchiveCodec.ZSTD)).isEqualTo("sims/lammps-1-0b6f3c1e/archive.tar.zst");
    assertThat(layout.archiveKey(ArchiveCodec.NONE)).isEqualTo("sims/lammps-1-0b6f3c1e/archive.tar");
    assertThat(layout.manifestKey()).isEqualTo("sims/lammps-1-0b6f3c1e/manifest.json");
  }

  @Test
  void refusesNamesThatWouldLeaveThePrefix() {
    assertThatThrownBy(() -> new ArchiveLayout("sims", "../other", "uid"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("checkpointName");
    assertThatThrownBy(() -> new ArchiveLayout("", "name", "uid")).hasMessageContaining("namespace");
    assertThatThrownBy(() -> new ArchiveLayout("sims", "name", null)).hasMessageContaining("checkpointUid");
  }
}
