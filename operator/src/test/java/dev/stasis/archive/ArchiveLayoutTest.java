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

  @Test
  void keepsANamespacesChunksInOneFolderNoCheckpointCanBeMistakenFor() {
    String name = "3f" + "0a".repeat(31);
    assertThat(ArchiveLayout.chunkKey("sims", name)).isEqualTo("sims/.chunks/3f/" + name);
    assertThat(ArchiveLayout.ofChunkKey("sims/.chunks/3f/" + name)).contains(new ArchiveLayout.StoredChunk("sims", name));
    assertThat(ArchiveLayout.ofKey("sims/.chunks/3f/" + name)).isEmpty();
    assertThat(ArchiveLayout.ofChunkKey(layout.manifestKey())).isEmpty();
    assertThat(ArchiveLayout.ofChunkKey("sims/.chunks/00/" + name)).as("the folder is the name's first two digits").isEmpty();
    assertThat(layout.chunkIndexKey()).isEqualTo("sims/lammps-1-0b6f3c1e/chunks.idx");
    assertThatThrownBy(() -> ArchiveLayout.chunkKey("sims", "../../x")).hasMessageContaining("64 lowercase hex");
  }
}
