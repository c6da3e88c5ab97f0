package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.dedup.ChunkCipher.Sealed;
import org.junit.jupiter.api.Test;

/** Deterministic chunk encryption: equal chunks equal objects in one namespace, nothing else opens. */
class ChunkCipherTest {
  private final byte[] chunkKey = Chunks.random(32, 1);
  private final byte[] chunk = Chunks.random(128 * 1024, 2);
  private final ChunkCipher teamA = ChunkCipher.forNamespace("2026-12", chunkKey, "team-a");

  @Test
  void theSameChunkSealsToTheSameObjectAndOpensToItsBytes() throws Exception {
    Sealed first = teamA.seal(chunk, 0, chunk.length);
    Sealed again = ChunkCipher.forNamespace("2026-12", chunkKey.clone(), "team-a").seal(chunk.clone(), 0, chunk.length);

    assertThat(again.name()).isEqualTo(first.name());
    assertThat(again.object()).isEqualTo(first.object());
    assertThat(teamA.seal(chunk, 0, chunk.length).object()).isEqualTo(first.object()); // same instance again
    assertThat(teamA.open(first.name(), first.object())).isEqualTo(chunk);
    assertThat(new String(first.object(), java.nio.charset.StandardCharsets.ISO_8859_1))
        .doesNotContain(new String(chunk, 0, 64, java.nio.charset.StandardCharsets.ISO_8859_1));
  }

  @Test
  void anotherNamespaceSealsTheSameChunkDifferentlyAndCannotOpenIt() {
    ChunkCipher teamB = ChunkCipher.forNamespace("2026-12", chunkKey, "team-b");
    Sealed a = teamA.seal(chunk, 0, chunk.length);

    assertThat(teamB.seal(chunk, 0, chunk.length).name()).isNotEqualTo(a.name());
    assertThatThrownBy(() -> teamB.open(a.name(), a.object())).isInstanceOf(ArchiveAuthenticationException.class);
  }

  @Test
  void anAlteredObjectFailsAuthentication() {
    Sealed sealed = teamA.seal(chunk, 0, chunk.length);
    byte[] altered = sealed.object().clone();
    altered[altered.length / 2] ^= 1;

    assertThatThrownBy(() -> teamA.open(sealed.name(), altered)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("fails authentication");
  }

  @Test
  void anotherChunkStoredUnderThisNameIsRefused() {
    Sealed wanted = teamA.seal(chunk, 0, chunk.length);
    byte[] other = Chunks.random(chunk.length, 3);
    Sealed swapped = teamA.seal(other, 0, other.length);

    assertThatThrownBy(() -> teamA.open(wanted.name(), swapped.object()))
        .isInstanceOf(ArchiveAuthenticationException.class);
  }

  @Test
  void aChunkOfAnotherKeyOrNotAChunkNameIsRefusedByName() {
    Sealed sealed = ChunkCipher.forNamespace("2027-02", chunkKey, "team-a").seal(chunk, 0, chunk.length);

    assertThatThrownBy(() -> teamA.open(sealed.name(), sealed.object())).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("encrypted with key '2026-12'");
    assertThatThrownBy(() -> teamA.open("../manifest.json", sealed.object()))
        .hasMessageContaining("is not a chunk name");
  }
}
