package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.Sha256;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Chunk names: stable within a namespace, unrelated across namespaces and secrets, opaque to others. */
class ChunkNamerTest {
  private final byte[] secret = Chunks.random(32, 1);
  private final byte[] chunk = Chunks.random(100_000, 2);

  @Test
  void theSameBytesInOneNamespaceGetTheSameName() {
    String name = ChunkNamer.forNamespace(secret, "team-a").name(chunk, 0, chunk.length);

    assertThat(ChunkNamer.forNamespace(secret.clone(), "team-a").name(chunk.clone(), 0, chunk.length))
        .isEqualTo(name).hasSize(64);
  }

  @Test
  void theSameBytesInTwoNamespacesGetDifferentNames() {
    assertThat(ChunkNamer.forNamespace(secret, "team-a").name(chunk, 0, chunk.length))
        .isNotEqualTo(ChunkNamer.forNamespace(secret, "team-b").name(chunk, 0, chunk.length));
  }

  @Test
  void aNameRevealsNothingWithoutTheSecret() {
    String name = ChunkNamer.forNamespace(secret, "team-a").name(chunk, 0, chunk.length);

    assertThat(name).isNotEqualTo(Sha256.hexOf(chunk));
    assertThat(ChunkNamer.forNamespace(Chunks.random(32, 3), "team-a").name(chunk, 0, chunk.length))
        .isNotEqualTo(name);
  }

  @Test
  void fetchedBytesMatchTheirNameOnlyIfUnchanged() {
    ChunkNamer namer = ChunkNamer.forNamespace(secret, "team-a");
    String name = namer.name(chunk, 0, chunk.length);
    byte[] tampered = chunk.clone();
    tampered[50_000] ^= 1;

    assertThat(namer.matches(name, chunk, 0, chunk.length)).isTrue();
    assertThat(namer.matches(name, tampered, 0, tampered.length)).isFalse();
    assertThat(namer.matches(name, chunk, 0, chunk.length - 1)).isFalse();
    assertThat(namer.matches(name, Arrays.copyOf(chunk, chunk.length + 1), 0, chunk.length + 1)).isFalse();
  }

  @Test
  void aSecretOfTheWrongSizeOrNoNamespaceIsRefused() {
    assertThatThrownBy(() -> ChunkNamer.forNamespace(new byte[16], "team-a")).hasMessageContaining("must be 32 bytes");
    assertThatThrownBy(() -> ChunkNamer.forNamespace(secret, "")).hasMessageContaining("namespace is empty");
  }
}
