package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The archive path with a storage key: tar, zstd, encryption and sha256 out, and the reverse in. */
class EncryptedArchiveTest {
  private static final BoundKey KEY = BoundKey.of(new ArchiveKey("2026-11", keyBytes()),
      new ArchiveIdentity("jobs", "0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b", ""));

  private static byte[] keyBytes() {
    byte[] key = new byte[ArchiveKey.BYTES];
    new Random(1001).nextBytes(key);
    return key;
  }

  @TempDir Path temp;

  @ParameterizedTest
  @EnumSource(ArchiveCodec.class)
  void roundTripsAndStoresNoPlaintext(ArchiveCodec codec) throws IOException {
    Path checkpoint = checkpoint();
    ByteArrayOutputStream stored = new ByteArrayOutputStream();

    ArchiveSummary summary = new ArchiveWriter().write(checkpoint, stored, codec, KEY);

    byte[] bytes = stored.toByteArray();
    assertThat(summary.storedBytes()).isEqualTo(bytes.length);
    assertThat(summary.sha256()).isEqualTo(Sha256.hexOf(bytes));
    assertThat(new String(bytes, 0, 4, java.nio.charset.StandardCharsets.US_ASCII)).isEqualTo("STSE");
    assertThat(new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1))
        .as("neither zstd's frame nor tar's names show").doesNotContain("\u0028\u00b5\u002f\u00fd").doesNotContain("ustar")
        .doesNotContain("core-1.img");

    Path restored = temp.resolve("restored");
    new ArchiveReader().extract(new ByteArrayInputStream(bytes), restored, codec, summary, KEY);
    for (String name : new String[] {"core-1.img", "pages-1.img"}) {
      assertThat(restored.resolve(name)).hasSameBinaryContentAs(checkpoint.resolve(name));
    }
  }

  @Test
  void streamedChunksEncryptToo() throws IOException {
    Path checkpoint = checkpoint();
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary;
    try (OpenArchive archive = new ArchiveWriter().open(stored, ArchiveCodec.ZSTD, KEY)) {
      archive.addChunk("pages-1.img", 0, checkpoint.resolve("pages-1.img"), 0, 100_000);
      archive.addChunk("pages-1.img", 1, checkpoint.resolve("pages-1.img"), 100_000, 200_000);
      archive.addFilesOf(checkpoint, "pages-1.img"::equals);
      summary = archive.finish();
    }
    Path restored = temp.resolve("restored");
    new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()), restored, ArchiveCodec.ZSTD,
        summary, KEY);
    assertThat(restored.resolve("pages-1.img")).hasSameBinaryContentAs(checkpoint.resolve("pages-1.img"));
  }

  @Test
  void aForeignTarIsStoredEncryptedAndDecryptsToItsCompressedForm() throws IOException {
    byte[] tar = new byte[3 << 20];
    new Random(9).nextBytes(tar);
    ByteArrayOutputStream stored = new ByteArrayOutputStream();

    ArchiveWriter.StoredTar written = new ArchiveWriter().writeTar(new ByteArrayInputStream(tar), stored,
        ArchiveCodec.ZSTD, KEY);

    byte[] compressed = new DecryptingInputStream(new ByteArrayInputStream(stored.toByteArray()), KEY).readAllBytes();
    assertThat(written.summary().sha256()).isEqualTo(Sha256.hexOf(stored.toByteArray()));
    assertThat(written.compressedSha256()).isEqualTo(Sha256.hexOf(compressed))
        .isNotEqualTo(written.summary().sha256());
    assertThat(written.compressedBytes()).isEqualTo(compressed.length);
    try (var zstd = new com.github.luben.zstd.ZstdInputStream(new ByteArrayInputStream(compressed))) {
      assertThat(zstd.readAllBytes()).isEqualTo(tar);
    }
    assertThat(written.tarSha256()).isEqualTo(Sha256.hexOf(tar));
  }

  /** Someone who can write the bucket rewrote both the archive and the manifest's sha256 and size. */
  @Test
  void anArchiveAlteredTogetherWithItsManifestIsRefusedAndNothingIsLeft() throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    new ArchiveWriter().write(checkpoint(), stored, ArchiveCodec.ZSTD, KEY);
    byte[] altered = stored.toByteArray();
    altered[altered.length / 2] ^= 1;
    String rewrittenSha256 = Sha256.hexOf(altered);
    Path restored = temp.resolve("restored");

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(altered), restored,
        ArchiveCodec.ZSTD, new ArchiveSummary(Long.MAX_VALUE, altered.length, rewrittenSha256), KEY))
        .isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageStartingWith("archive matches the sha256 recorded when it was stored but segment ")
        .hasMessageContaining("does not authenticate with key '2026-11'")
        .hasMessageEndingWith("refusing to restore it — restore from another checkpoint");
    assertThat(restored).doesNotExist();
  }

  @Test
  void anAlteredArchiveWhoseManifestWasLeftAloneFailsItsSha256() throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary = new ArchiveWriter().write(checkpoint(), stored, ArchiveCodec.ZSTD, KEY);
    byte[] altered = stored.toByteArray();
    altered[100] ^= 1;

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(altered), temp.resolve("r"),
        ArchiveCodec.ZSTD, summary, KEY))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("archive sha256 mismatch");
  }

  @Test
  void anArchiveCutAtASegmentBoundaryIsRefusedEvenWithARewrittenManifest() throws IOException {
    Path big = Files.createDirectories(temp.resolve("big"));
    byte[] content = new byte[3 << 20];
    new Random(5).nextBytes(content);
    Files.write(big.resolve("pages-1.img"), content);
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    new ArchiveWriter().write(big, stored, ArchiveCodec.NONE, KEY);
    byte[] whole = stored.toByteArray();
    int segment = SegmentCipher.DEFAULT_SEGMENT_BYTES + SegmentCipher.TAG_BYTES;
    byte[] cut = java.util.Arrays.copyOf(whole, SegmentCipher.HEADER_BYTES + 2 * segment);

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(cut), temp.resolve("r"),
        ArchiveCodec.NONE, new ArchiveSummary(Long.MAX_VALUE, cut.length, Sha256.hexOf(cut)),
        KEY))
        .isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("as its last segment");
  }

  @Test
  void noCriuImageReachesTheDiskBeforeItsSegmentAuthenticated() throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    new ArchiveWriter().write(checkpoint(), stored, ArchiveCodec.NONE, KEY);
    byte[] altered = stored.toByteArray();
    altered[SegmentCipher.HEADER_BYTES + 10] ^= 1; // inside the first tar header
    Path restored = temp.resolve("restored");
    InputStream source = new ByteArrayInputStream(altered);

    assertThatThrownBy(() -> new ArchiveReader().extract(source, restored, ArchiveCodec.NONE,
        new ArchiveSummary(Long.MAX_VALUE, altered.length, Sha256.hexOf(altered)), KEY))
        .isInstanceOf(ArchiveAuthenticationException.class).hasMessageContaining("segment 0 ");
    assertThat(restored).doesNotExist();
  }

  private Path checkpoint() throws IOException {
    Path checkpoint = Files.createDirectories(temp.resolve("checkpoint"));
    Random random = new Random(3);
    for (String name : new String[] {"core-1.img", "pages-1.img"}) {
      byte[] content = new byte[300_000];
      random.nextBytes(content);
      // half random, half compressible, like real memory
      java.util.Arrays.fill(content, 150_000, 300_000, (byte) 'x');
      Files.write(checkpoint.resolve(name), content);
    }
    try (Stream<Path> files = Files.list(checkpoint)) {
      assertThat(files).hasSize(2);
    }
    return checkpoint;
  }
}
