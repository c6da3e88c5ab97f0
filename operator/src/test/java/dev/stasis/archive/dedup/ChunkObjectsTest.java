package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ChunkKey;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** Stored chunk objects: named over the chunk, compressed when that pays, sealed when encrypting; opened only as the chunk named. */
class ChunkObjectsTest {
  private final ChunkKey key = ChunkKey.of(new ArchiveKey("k1", Chunks.random(32, 1)), "team-a");
  private final byte[] random = Chunks.random(128 * 1024, 2);
  private final byte[] zeroes = new byte[128 * 1024];

  @Test
  void namesDoNotDependOnCompressionOrEncryption() {
    String name = objects(false, false).name(random, 0, random.length);

    assertThat(objects(true, true).name(random, 0, random.length)).isEqualTo(name);
    assertThat(ChunkObjects.forNamespace(ChunkKey.of(new ArchiveKey("k1", Chunks.random(32, 1)), "team-b"), "team-b",
        false, true).name(random, 0, random.length)).isNotEqualTo(name);
  }

  @Test
  void compressibleChunksShrinkIncompressibleOnesStayRawAndBothComeBack() throws Exception {
    for (boolean encrypt : new boolean[] {false, true}) {
      ChunkObjects objects = objects(encrypt, true);
      String zeroName = objects.name(zeroes, 0, zeroes.length);
      byte[] zeroObject = objects.object(zeroName, zeroes, 0, zeroes.length);
      String randomName = objects.name(random, 0, random.length);
      byte[] randomObject = objects.object(randomName, random, 0, random.length);

      assertThat(zeroObject.length).isLessThan(1024);
      assertThat(randomObject.length).isBetween(random.length + 1, random.length + 64);
      assertThat(objects.open(zeroName, zeroObject, zeroes.length)).isEqualTo(zeroes);
      assertThat(objects.open(randomName, randomObject, random.length)).isEqualTo(random);
      assertThat(objects.object(randomName, random, 0, random.length)).as("deterministic").isEqualTo(randomObject);
    }
  }

  @Test
  void aChunkOpensInPlaceInARangeOfItsPackAndOnlyItsOwnBytesCount() throws Exception {
    for (boolean encrypt : new boolean[] {false, true}) {
      ChunkObjects objects = objects(encrypt, true);
      for (byte[] chunk : new byte[][] {zeroes, random}) {
        String name = objects.name(chunk, 0, chunk.length);
        byte[] object = objects.object(name, chunk, 0, chunk.length);
        // between its neighbours' bytes, as a ranged read of a pack returns it
        byte[] range = Chunks.random(object.length + 200, 4);
        System.arraycopy(object, 0, range, 100, object.length);

        assertThat(objects.open(name, range, 100, object.length, chunk.length)).isEqualTo(chunk);
        ByteBuffer opened = objects.openInPlace(name, range, 100, object.length, chunk.length);
        byte[] openedBytes = new byte[opened.remaining()];
        opened.get(openedBytes);
        assertThat(openedBytes).as("in place").isEqualTo(chunk);
        assertThatThrownBy(() -> objects.open(name, range, 101, object.length, chunk.length)).as("one byte off")
            .isInstanceOfAny(ArchiveAuthenticationException.class, ArchiveIntegrityException.class);
        range[100 + object.length / 2] ^= 1;
        assertThatThrownBy(() -> objects.open(name, range, 100, object.length, chunk.length)).as("altered")
            .isInstanceOfAny(ArchiveAuthenticationException.class, ArchiveIntegrityException.class);
        assertThatThrownBy(() -> objects.openInPlace(name, range, 100, object.length, chunk.length)).as("altered, in place")
            .isInstanceOfAny(ArchiveAuthenticationException.class, ArchiveIntegrityException.class);
      }
    }
  }

  @Test
  void anObjectStoredUnderAnotherChunksNameIsRefused() {
    for (boolean encrypt : new boolean[] {false, true}) {
      ChunkObjects objects = objects(encrypt, true);
      byte[] other = Chunks.random(random.length, 3);
      String wanted = objects.name(random, 0, random.length);
      byte[] swapped = objects.object(objects.name(other, 0, other.length), other, 0, other.length);

      assertThatThrownBy(() -> objects.open(wanted, swapped, random.length))
          .isInstanceOf(ArchiveAuthenticationException.class).hasMessageContaining(wanted);
    }
  }

  @Test
  void anAlteredUnencryptedChunkFailsItsName() {
    ChunkObjects objects = objects(false, true);
    String name = objects.name(random, 0, random.length);
    byte[] object = objects.object(name, random, 0, random.length);
    object[1000] ^= 1;

    assertThatThrownBy(() -> objects.open(name, object, random.length))
        .isInstanceOf(ArchiveAuthenticationException.class).hasMessageContaining("other bytes than its name says");
  }

  @Test
  void aChunkOfAnotherLengthOrFormatIsRefused() {
    ChunkObjects objects = objects(false, true);
    String name = objects.name(zeroes, 0, zeroes.length);
    byte[] object = objects.object(name, zeroes, 0, zeroes.length);

    assertThatThrownBy(() -> objects.open(name, object, zeroes.length - 1)).isInstanceOf(ArchiveIntegrityException.class);
    byte[] unknown = object.clone();
    unknown[0] = 7;
    assertThatThrownBy(() -> objects.open(name, unknown, zeroes.length)).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("not a stored chunk");
  }

  private ChunkObjects objects(boolean encrypt, boolean compress) {
    return ChunkObjects.forNamespace(key, "team-a", encrypt, compress);
  }
}
