package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class EncryptedStreamTest {
  private static final int SEGMENT = 64;
  static final ArchiveIdentity ARCHIVE = new ArchiveIdentity("jobs", "0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b", "");
  private static final BoundKey KEY = key("k1", 1);

  @ParameterizedTest(name = "{0} bytes")
  @ValueSource(ints = {0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 7})
  void roundTripsAnySize(int size) throws IOException {
    byte[] plain = random(size, size);

    byte[] sealed = encrypt(plain, KEY, SEGMENT);

    // One tag per segment, and an empty or exactly-full stream gets no extra empty segment.
    int segments = Math.max(1, (size + SEGMENT - 1) / SEGMENT);
    assertThat(sealed).hasSize(SegmentCipher.HEADER_BYTES + size + segments * SegmentCipher.TAG_BYTES);
    assertThat(decrypt(sealed, KEY)).isEqualTo(plain);
  }

  @ParameterizedTest(name = "{0} bytes")
  @ValueSource(ints = {0, SegmentCipher.DEFAULT_SEGMENT_BYTES, 2 * SegmentCipher.DEFAULT_SEGMENT_BYTES + 3})
  void roundTripsWithTheDefaultSegmentSize(int size) throws IOException {
    byte[] plain = random(size, 7);
    ByteArrayOutputStream sealed = new ByteArrayOutputStream();
    try (var out = new EncryptingOutputStream(sealed, KEY)) {
      // written in odd pieces, as zstd hands them over
      for (int at = 0; at < size; at += 1000) {
        out.write(plain, at, Math.min(1000, size - at));
      }
    }
    assertThat(decrypt(sealed.toByteArray(), KEY)).isEqualTo(plain);
  }

  @Test
  void theSameBytesEncryptDifferentlyEachTime() throws IOException {
    byte[] plain = random(200, 1);
    byte[] first = encrypt(plain, KEY, SEGMENT);
    byte[] second = encrypt(plain, KEY, SEGMENT);
    assertThat(first).isNotEqualTo(second);
    assertThat(indexOf(first, Arrays.copyOfRange(plain, 0, 16))).as("no plaintext shows").isNegative();
  }

  @Test
  void aFlippedBitAnywhereIsRefused() throws IOException {
    byte[] sealed = encrypt(random(3 * SEGMENT + 5, 2), KEY, SEGMENT);
    for (int at = 0; at < sealed.length; at++) {
      byte[] flipped = sealed.clone();
      flipped[at] ^= 0x10;
      int position = at;
      assertThatThrownBy(() -> decrypt(flipped, KEY)).as("bit flipped at byte %d", position)
          .isInstanceOf(ArchiveIntegrityException.class);
    }
  }

  @Test
  void everyTruncationIsRefused() throws IOException {
    byte[] sealed = encrypt(random(3 * SEGMENT + 5, 3), KEY, SEGMENT);
    for (int length = 0; length < sealed.length; length++) {
      byte[] cut = Arrays.copyOf(sealed, length);
      int kept = length;
      assertThatThrownBy(() -> decrypt(cut, KEY)).as("cut to %d bytes", kept)
          .isInstanceOf(ArchiveIntegrityException.class);
    }
  }

  @Test
  void droppingTheLastSegmentIsRefused() throws IOException {
    byte[] sealed = encrypt(random(3 * SEGMENT, 4), KEY, SEGMENT);
    int sealedSegment = SEGMENT + SegmentCipher.TAG_BYTES;
    byte[] withoutLast = Arrays.copyOf(sealed, sealed.length - sealedSegment);

    assertThatThrownBy(() -> decrypt(withoutLast, KEY))
        .isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("segment 1 of the encrypted archive does not authenticate with key 'k1' for jobs/0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b as its last segment");
  }

  @Test
  void reorderedOrRepeatedSegmentsAreRefused() throws IOException {
    byte[] sealed = encrypt(random(3 * SEGMENT + 5, 5), KEY, SEGMENT);
    int size = SEGMENT + SegmentCipher.TAG_BYTES;
    int first = SegmentCipher.HEADER_BYTES;
    byte[] swapped = sealed.clone();
    System.arraycopy(sealed, first, swapped, first + size, size);
    System.arraycopy(sealed, first + size, swapped, first, size);
    byte[] repeated = sealed.clone();
    System.arraycopy(sealed, first, repeated, first + size, size);

    assertThatThrownBy(() -> decrypt(swapped, KEY)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("segment 0 ");
    assertThatThrownBy(() -> decrypt(repeated, KEY)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("segment 1 ");
  }

  @Test
  void anotherKeyIsRefusedAndNamed() throws IOException {
    byte[] sealed = encrypt(random(100, 6), KEY, SEGMENT);

    assertThatThrownBy(() -> decrypt(sealed, key("k1", 2)))
        .isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("does not authenticate with key 'k1'")
        .hasMessageContaining("the key's bytes are not the ones it was written with");
  }

  /**
   * The archive of one checkpoint copied over another's, under the same storage key: the key derived
   * for the other archive, and the identity every segment authenticates, differ.
   */
  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"namespace", "checkpoint", "container", "key id"})
  void anArchiveOfAnotherCheckpointContainerOrKeyIdIsRefused(String differs) throws IOException {
    ArchiveKey storageKey = new ArchiveKey("k1", random(ArchiveKey.BYTES, 1001));
    byte[] sealed = encrypt(random(3 * SEGMENT, 10), BoundKey.of(storageKey, ARCHIVE), SEGMENT);
    BoundKey other = switch (differs) {
      case "namespace" -> BoundKey.of(storageKey, new ArchiveIdentity("jobs2", ARCHIVE.checkpointUid(), ""));
      case "checkpoint" -> BoundKey.of(storageKey, new ArchiveIdentity("jobs", "1f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b", ""));
      case "container" -> BoundKey.of(storageKey, new ArchiveIdentity("jobs", ARCHIVE.checkpointUid(), "app"));
      default -> BoundKey.of(new ArchiveKey("k2", random(ArchiveKey.BYTES, 1001)), ARCHIVE);
    };

    assertThat(decrypt(sealed, BoundKey.of(storageKey, ARCHIVE))).hasSize(3 * SEGMENT);
    assertThatThrownBy(() -> decrypt(sealed, other))
        .isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("segment 0 of the encrypted archive does not authenticate")
        .hasMessageContaining("belongs to another checkpoint");
  }

  /** Before archives were bound to their checkpoint: refused with what to do, not as damaged bytes. */
  @Test
  void theUnboundFormatOfOlderVersionsIsRefused() throws IOException {
    byte[] sealed = encrypt(random(10, 11), KEY, SEGMENT);
    sealed[SegmentCipher.MAGIC.length] = 1;

    assertThatThrownBy(() -> decrypt(sealed, KEY))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("format version 1, which did not bind archives to their checkpoint")
        .hasMessageContaining("take a new checkpoint");
  }

  @Test
  void plaintextIsRefusedAsNotEncrypted() {
    byte[] plain = random(500, 8);
    assertThatThrownBy(() -> decrypt(plain, KEY))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("does not start like an encrypted Stasis archive");
  }

  @Test
  void aHeaderAskingForHugeSegmentsIsRefusedBeforeAllocating() throws IOException {
    byte[] sealed = encrypt(random(10, 9), KEY, SEGMENT);
    sealed[SegmentCipher.MAGIC.length + 1] = 0x7f; // segment size high byte

    assertThatThrownBy(() -> decrypt(sealed, KEY))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("declares segments of");
  }

  @Test
  void keysMustBe32Bytes() {
    assertThatThrownBy(() -> new ArchiveKey("short", new byte[16]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("key 'short' is 16 bytes; AES-256 needs 32");
    assertThat(new ArchiveKey("k1", new byte[32]).toString()).isEqualTo("ArchiveKey[k1]");
    assertThat(KEY.toString()).isEqualTo("BoundKey[k1 for jobs/0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b]");
  }

  /** Storage key {@code id} (from {@code seed}) bound to {@link #ARCHIVE}. */
  static BoundKey key(String id, int seed) {
    return BoundKey.of(new ArchiveKey(id, random(ArchiveKey.BYTES, 1000 + seed)), ARCHIVE);
  }

  static byte[] encrypt(byte[] plain, BoundKey key, int segmentBytes) throws IOException {
    ByteArrayOutputStream sealed = new ByteArrayOutputStream();
    try (var out = new EncryptingOutputStream(sealed, key, segmentBytes)) {
      out.write(plain);
    }
    return sealed.toByteArray();
  }

  static byte[] decrypt(byte[] sealed, BoundKey key) throws IOException {
    return new DecryptingInputStream(new ByteArrayInputStream(sealed), key).readAllBytes();
  }

  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }
}
