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

  @Test
  void packsAndTheirIndexesSitInTheNamespacesPackFolderAndAreRecognisedByKey() {
    String pack = "3f".repeat(16);
    assertThat(ArchiveLayout.packKey("sims", pack)).isEqualTo("sims/.packs/3f/" + pack + ".pack");
    assertThat(ArchiveLayout.packIndexKey("sims", pack)).isEqualTo("sims/.packs/3f/" + pack + ".idx");
    assertThat(ArchiveLayout.packPrefix("sims")).isEqualTo("sims/.packs/");
    assertThat(ArchiveLayout.ofPackKey("sims/.packs/3f/" + pack + ".pack"))
        .contains(new ArchiveLayout.StoredPackObject("sims", pack, false));
    assertThat(ArchiveLayout.ofPackKey("sims/.packs/3f/" + pack + ".idx"))
        .contains(new ArchiveLayout.StoredPackObject("sims", pack, true));
    assertThat(ArchiveLayout.ofPackKey("sims/.packs/00/" + pack + ".pack")).as("the folder is the id's first two digits")
        .isEmpty();
    assertThat(ArchiveLayout.ofPackKey("sims/.packs/3f/" + pack + ".tmp")).isEmpty();
    assertThat(ArchiveLayout.ofKey("sims/.packs/3f/" + pack + ".pack")).as("no checkpoint's object").isEmpty();
    assertThat(ArchiveLayout.ofChunkKey("sims/.packs/3f/" + pack + ".pack")).isEmpty();
    assertThatThrownBy(() -> ArchiveLayout.packKey("sims", "../../x")).hasMessageContaining("32 lowercase hex");
  }
}
