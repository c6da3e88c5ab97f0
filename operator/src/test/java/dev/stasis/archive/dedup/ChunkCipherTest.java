package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveAuthenticationException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Deterministic chunk encryption: equal chunks equal objects in one namespace, nothing else opens. */
class ChunkCipherTest {
  private final byte[] chunkKey = Chunks.random(32, 1);
  private final byte[] chunk = Chunks.random(128 * 1024, 2);
  private final String name = "ab".repeat(32);
  private final ChunkCipher teamA = ChunkCipher.forNamespace("2026-12", chunkKey, "team-a");

  @Test
  void theSameChunkSealsToTheSameObjectAndOpensToItsBytes() throws Exception {
    byte[] first = teamA.seal(name, chunk, 0, chunk.length);
    byte[] again = ChunkCipher.forNamespace("2026-12", chunkKey.clone(), "team-a").seal(name, chunk.clone(), 0,
        chunk.length);

    assertThat(again).isEqualTo(first);
    assertThat(teamA.seal(name, chunk, 0, chunk.length)).isEqualTo(first); // same instance again
    assertThat(teamA.open(name, first)).isEqualTo(chunk);
    assertThat(new String(first, StandardCharsets.ISO_8859_1))
        .doesNotContain(new String(chunk, 0, 64, StandardCharsets.ISO_8859_1));
  }

  @Test
  void differentChunksGetDifferentNonces() {
    byte[] other = Chunks.random(chunk.length, 3);
    byte[] a = teamA.seal(name, chunk, 0, chunk.length);
    byte[] b = teamA.seal(name, other, 0, other.length);
    int nonceAt = "STSC".length() + 2 + "2026-12".length();

    assertThat(java.util.Arrays.copyOfRange(a, nonceAt, nonceAt + 12))
        .isNotEqualTo(java.util.Arrays.copyOfRange(b, nonceAt, nonceAt + 12));
  }

  @Test
  void anotherNamespaceCannotOpenIt() {
    ChunkCipher teamB = ChunkCipher.forNamespace("2026-12", chunkKey, "team-b");
    byte[] a = teamA.seal(name, chunk, 0, chunk.length);

    assertThat(teamB.seal(name, chunk, 0, chunk.length)).isNotEqualTo(a);
    assertThatThrownBy(() -> teamB.open(name, a)).isInstanceOf(ArchiveAuthenticationException.class);
  }

  @Test
  void anAlteredObjectFailsAuthentication() {
    byte[] altered = teamA.seal(name, chunk, 0, chunk.length);
    altered[altered.length / 2] ^= 1;

    assertThatThrownBy(() -> teamA.open(name, altered)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("fails authentication");
  }

  @Test
  void anObjectStoredUnderAnotherNameDoesNotOpen() {
    byte[] sealed = teamA.seal(name, chunk, 0, chunk.length);

    assertThatThrownBy(() -> teamA.open("cd".repeat(32), sealed)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("another chunk's name");
  }

  @Test
  void aChunkOfAnotherKeyOrNotAChunkNameIsRefusedByName() {
    byte[] sealed = ChunkCipher.forNamespace("2027-02", chunkKey, "team-a").seal(name, chunk, 0, chunk.length);

    assertThatThrownBy(() -> teamA.open(name, sealed)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("encrypted with key '2026-12'");
    assertThatThrownBy(() -> teamA.open("../manifest.json", sealed)).hasMessageContaining("is not a chunk name");
  }
}
