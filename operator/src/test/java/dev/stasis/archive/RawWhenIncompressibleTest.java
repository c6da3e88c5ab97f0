package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RawWhenIncompressibleTest {
  private static final int MIB = 1 << 20;

  @TempDir Path temp;

  @Test
  void incompressibleBytesAreStoredRawAndStillDecodeAsZstd() throws IOException {
    byte[] random = randomBytes(4 * MIB, 1);

    byte[] stored = compress(random, 0);

    // A plain copy plus frame and block headers: zstd spent no effort on it.
    assertThat(stored.length).isBetween(random.length, random.length + 1024);
    assertThat(decompress(stored)).isEqualTo(random);
    assertThat(rawFrames(stored)).isEqualTo(4);
  }

  @Test
  void compressibleBytesAreStillCompressed() throws IOException {
    byte[] text = "the same line of text, again and again\n".repeat(4 * MIB / 39).getBytes();

    byte[] stored = compress(text, 0);

    assertThat(stored.length).isLessThan(text.length / 50);
    assertThat(rawFrames(stored)).isZero();
    assertThat(decompress(stored)).isEqualTo(text);
  }

  @Test
  void mixedBytesRoundTripWhicheverWayEachPartWent() throws IOException {
    ByteArrayOutputStream mixed = new ByteArrayOutputStream();
    for (int i = 0; i < 6; i++) {
      byte[] part = i % 2 == 0 ? randomBytes(MIB + 12345, i) : new byte[MIB - 777];
      mixed.write(part);
    }
    byte[] original = mixed.toByteArray();

    for (int workers : new int[] {0, 2}) {
      byte[] stored = compress(original, workers);

      assertThat(decompress(stored)).isEqualTo(original);
      // The zero runs compressed, the random ones did not.
      assertThat(stored.length).isBetween(3 * MIB, 3 * MIB + 3 * 12345 + 64 * 1024);
      assertThat(rawFrames(stored)).isPositive();
    }
  }

  @Test
  void aTruncatedOrCorruptedRawFrameIsRefused() throws IOException {
    byte[] random = randomBytes(2 * MIB, 7);
    byte[] stored = compress(random, 0);

    byte[] truncated = Arrays.copyOf(stored, stored.length - 1000);
    assertThatThrownBy(() -> decompress(truncated)).isInstanceOf(IOException.class);

    byte[] badHeader = stored.clone();
    badHeader[9] ^= (byte) 0x06; // the first block's type: raw becomes reserved
    assertThatThrownBy(() -> decompress(badHeader)).isInstanceOf(IOException.class);
  }

  /** A whole archive of incompressible images still round-trips and is checked by its sha256. */
  @Test
  void anArchiveOfIncompressibleImagesIsStoredRawAndRestores() throws IOException {
    Path images = Files.createDirectory(temp.resolve("images"));
    Files.write(images.resolve("pages-1.img"), randomBytes(5 * MIB, 3));
    Files.writeString(images.resolve("inventory.img"), "inventory ".repeat(10_000));
    ByteArrayOutputStream stored = new ByteArrayOutputStream();

    ArchiveSummary summary = new ArchiveWriter().write(images, stored, ArchiveCodec.ZSTD);
    Path restored = temp.resolve("restored");
    new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()), restored, ArchiveCodec.ZSTD, summary);

    assertThat(summary.storedBytes()).isBetween(5L * MIB, 5L * MIB + 64 * 1024);
    assertThat(rawFrames(stored.toByteArray())).as("the pages went out raw").isGreaterThanOrEqualTo(4);
    assertThat(Files.readAllBytes(restored.resolve("pages-1.img")))
        .isEqualTo(Files.readAllBytes(images.resolve("pages-1.img")));
    assertThat(Files.readString(restored.resolve("inventory.img"))).isEqualTo("inventory ".repeat(10_000));
  }

  private static byte[] compress(byte[] bytes, int workers) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (RawWhenIncompressible zstd = new RawWhenIncompressible(out, 3, workers)) {
      // In 1 MiB batches, as the archive writes.
      for (int offset = 0; offset < bytes.length; offset += MIB) {
        zstd.write(bytes, offset, Math.min(MIB, bytes.length - offset));
      }
    }
    return out.toByteArray();
  }

  private static byte[] decompress(byte[] stored) throws IOException {
    try (ZstdInputStreamNoFinalizer in = new ZstdInputStreamNoFinalizer(new ByteArrayInputStream(stored))) {
      return in.readAllBytes();
    }
  }

  /** Frames whose header is the one raw frames get: single segment, 4-byte content size. */
  private static int rawFrames(byte[] stored) {
    int frames = 0;
    for (int i = 0; i + 5 <= stored.length; i++) {
      if ((stored[i] & 0xff) == 0x28 && (stored[i + 1] & 0xff) == 0xb5 && (stored[i + 2] & 0xff) == 0x2f
          && (stored[i + 3] & 0xff) == 0xfd && (stored[i + 4] & 0xff) == 0xa0) {
        frames++;
      }
    }
    return frames;
  }

  private static byte[] randomBytes(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }
}
