package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveIntegrityException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class PackIndexTest {
  private static final byte[] CHUNK_KEY = new byte[32];
  private static final String PACK = "5e".repeat(16);
  private static final PackIndex.Key KEY = PackIndex.Key.forNamespace(CHUNK_KEY, "chunks-1", "sims");
  private static final PackIndex INDEX = new PackIndex("chunks-1", PACK, List.of(
      new PackIndex.Entry("0a".repeat(32), 0, 131_100, 131_072),
      new PackIndex.Entry("0b".repeat(32), 131_100, 1_200, 4_096)));

  @Test
  void readsBackWhatWasWrittenUnderTheSameKeyNamespaceAndPack() throws Exception {
    byte[] bytes = INDEX.encode(KEY);
    assertThat(PackIndex.read(KEY, PACK, bytes)).isEqualTo(INDEX);
    assertThat(INDEX.packBytes()).isEqualTo(132_300);
    assertThat(PackIndex.keyIdOf(bytes)).isEqualTo("chunks-1");
  }

  @Test
  void refusesAnyAlteredByteAnyCutAndAnyOtherKeyNamespaceOrPack() {
    byte[] bytes = INDEX.encode(KEY);
    for (int i = 0; i < bytes.length; i++) {
      byte[] altered = bytes.clone();
      altered[i] ^= 1;
      assertThatThrownBy(() -> PackIndex.read(KEY, PACK, altered)).as("byte %d flipped", i)
          .isInstanceOf(ArchiveIntegrityException.class);
    }
    for (int length = 0; length < bytes.length; length++) {
      byte[] cut = Arrays.copyOf(bytes, length);
      assertThatThrownBy(() -> PackIndex.read(KEY, PACK, cut)).as("cut at %d", length)
          .isInstanceOf(ArchiveIntegrityException.class);
    }
    PackIndex.Key otherNamespace = PackIndex.Key.forNamespace(CHUNK_KEY, "chunks-1", "web");
    assertThatThrownBy(() -> PackIndex.read(otherNamespace, PACK, bytes)).hasMessageContaining("not authentic");
    byte[] otherSecret = new byte[32];
    otherSecret[0] = 1;
    assertThatThrownBy(() -> PackIndex.read(PackIndex.Key.forNamespace(otherSecret, "chunks-1", "sims"), PACK, bytes))
        .hasMessageContaining("not authentic");
    assertThatThrownBy(() -> PackIndex.read(KEY, "6f".repeat(16), bytes)).as("copied next to another pack")
        .hasMessageContaining("says it is pack " + PACK);
  }

  @Test
  void theKeyThatAuthenticatesIndexesIsNotTheOneThatNamesChunks() throws Exception {
    // An index whose MAC were a chunk name could be forged by storing a chunk with its body as content.
    byte[] bytes = INDEX.encode(KEY);
    byte[] body = Arrays.copyOf(bytes, bytes.length - 32);
    String mac = HexFormat.of().formatHex(bytes, bytes.length - 32, bytes.length);
    assertThat(ChunkNamer.forNamespace(CHUNK_KEY, "sims").name(body, 0, body.length)).isNotEqualTo(mac);
  }

  @Test
  void entriesAreContiguousFromTheStartOfThePack() {
    assertThatThrownBy(() -> new PackIndex("chunks-1", PACK, List.of(new PackIndex.Entry("0a".repeat(32), 10, 5, 5))))
        .hasMessageContaining("chunks before it end at 0");
    assertThatThrownBy(() -> new PackIndex("chunks-1", "../x", List.of())).hasMessageContaining("32 lowercase hex");
    assertThatThrownBy(() -> INDEX.encode(PackIndex.Key.forNamespace(CHUNK_KEY, "k2", "sims")))
        .hasMessageContaining("is for key chunks-1");
  }

  @Test
  void refusesSomethingElseWithAClearMessage() {
    byte[] other = "STSI\u0002 not a pack index at all, padded to be longer than a MAC".getBytes();
    assertThatThrownBy(() -> PackIndex.keyIdOf(other)).hasMessageContaining("not a pack index");
  }
}
