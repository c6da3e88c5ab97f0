package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Whatever is wrong with a stored archive, extraction says what and leaves nothing behind. */
class ArchiveIntegrityTest {
  @TempDir Path temp;
  Path restored;

  @BeforeEach
  void paths() {
    restored = temp.resolve("restored");
  }

  @ParameterizedTest
  @EnumSource(ArchiveCodec.class)
  void aFlippedByteIsASha256Mismatch(ArchiveCodec codec) throws IOException {
    Stored archive = archiveOfRandomFiles(codec);
    byte[] damaged = archive.bytes.clone();
    damaged[damaged.length / 2] ^= 0x01;

    assertThatThrownBy(() -> extract(damaged, codec, archive.summary.sha256(), archive.summary.storedBytes()))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("archive sha256 mismatch: " + archive.summary.sha256()
            + " was recorded when it was stored, the stored bytes hash to " + Sha256.hexOf(damaged))
        .hasMessageEndingWith("the archive was damaged or replaced — restore from another checkpoint");
    assertThat(restored).doesNotExist();
  }

  @ParameterizedTest
  @EnumSource(ArchiveCodec.class)
  void aTruncatedArchiveIsReportedAsTruncated(ArchiveCodec codec) throws IOException {
    Stored archive = archiveOfRandomFiles(codec);
    byte[] truncated = Arrays.copyOf(archive.bytes, archive.bytes.length * 2 / 3);

    assertThatThrownBy(() -> extract(truncated, codec, archive.summary.sha256(), archive.summary.storedBytes()))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessage("archive size mismatch: " + archive.bytes.length + " bytes were recorded when it was stored, storage returned "
            + truncated.length + "; the archive is truncated — restore from another checkpoint");
    assertThat(restored).doesNotExist();
  }

  @Test
  void aSizeOtherThanTheManifestsIsRefusedEvenWhenTheHashMatches() throws IOException {
    Stored archive = archiveOfRandomFiles(ArchiveCodec.ZSTD);

    assertThatThrownBy(() -> extract(archive.bytes, ArchiveCodec.ZSTD, archive.summary.sha256(), archive.summary.storedBytes() + 1))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("archive size mismatch: " + (archive.bytes.length + 1) + " bytes were recorded");
    assertThat(restored).doesNotExist();
  }

  @Test
  void trailingBytesAfterTheArchiveAreCountedAndHashed() throws IOException {
    Stored archive = archiveOfRandomFiles(ArchiveCodec.NONE);
    byte[] extended = Arrays.copyOf(archive.bytes, archive.bytes.length + 10);

    assertThatThrownBy(() -> extract(extended, ArchiveCodec.NONE, archive.summary.sha256(), archive.summary.storedBytes()))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("storage returned more; the archive is not the one that was written");
  }

  /** An object that never ends in place of the archive: read one byte past the recorded size, no further. */
  @Test
  void anEndlessObjectIsReadOnlyOneBytePastTheRecordedSize() throws IOException {
    Stored archive = archiveOfRandomFiles(ArchiveCodec.ZSTD);
    long[] served = {0};
    InputStream endless = new InputStream() {
      @Override
      public int read() {
        served[0]++;
        return 0;
      }
    };

    assertThatThrownBy(() -> new ArchiveReader().extract(new java.io.SequenceInputStream(
            new ByteArrayInputStream(archive.bytes), endless), restored, ArchiveCodec.ZSTD, archive.summary))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("storage returned more");
    assertThat(served[0]).isEqualTo(1);
    assertThat(restored).doesNotExist();
  }

  /**
   * Stored bytes that decompress far beyond what the archive held (a few KiB of zstd that unpack to
   * 256 MiB): unpacking stops past the size recorded before compression, and nothing stays.
   */
  @Test
  void bytesThatDecompressBeyondTheRecordedSizeAreStoppedThere() throws IOException {
    Path images = Files.createDirectories(temp.resolve("images"));
    try (var zeros = new java.io.RandomAccessFile(images.resolve("pages-1.img").toFile(), "rw")) {
      zeros.setLength(256L << 20);
    }
    ByteArrayOutputStream bomb = new ByteArrayOutputStream();
    ArchiveSummary written = new ArchiveWriter().write(images, bomb, ArchiveCodec.ZSTD);
    assertThat(written.storedBytes()).as("a few KiB").isLessThan(1 << 20);
    ArchiveSummary recorded = new ArchiveSummary(1 << 20, written.storedBytes(), written.sha256());

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(bomb.toByteArray()), restored,
        ArchiveCodec.ZSTD, recorded))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("the archive decompresses to more than the 1048576 bytes recorded when it was stored");
    assertThat(restored).doesNotExist();
  }

  @Test
  void anArchiveWrittenCorruptIsToldApartFromOneDamagedInStorage() throws IOException {
    byte[] notZstd = "this was never a zstd stream".getBytes(StandardCharsets.UTF_8);

    assertThatThrownBy(() -> extract(notZstd, ArchiveCodec.ZSTD, Sha256.hexOf(notZstd), notZstd.length))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("archive matches what was recorded when it was stored (" + notZstd.length + " bytes, sha256 ")
        .hasMessageContaining("is not a valid zstd-compressed tar stream")
        .hasMessageEndingWith("restore from another checkpoint");
  }

  @Test
  void leavesAnExistingEmptyTargetInPlaceButEmpty() throws IOException {
    Stored archive = archiveOfRandomFiles(ArchiveCodec.ZSTD);
    Files.createDirectories(restored);

    assertThatThrownBy(() -> extract(archive.bytes, ArchiveCodec.ZSTD, "00".repeat(32), archive.summary.storedBytes()))
        .isInstanceOf(ArchiveIntegrityException.class);
    assertThat(restored).isEmptyDirectory();
  }

  @Test
  void refusesPathsOutsideTheTarget() throws IOException {
    assertRefused(entry("../escaped", TarArchiveEntry.LF_NORMAL), "refusing to extract archive entry '../escaped': its path climbs out of the target directory");
    assertRefused(entry("fine/../../escaped", TarArchiveEntry.LF_NORMAL), "its path climbs out of the target directory");
  }

  @Test
  void refusesAbsolutePaths() throws IOException {
    assertRefused(entry("/etc/cron.d/evil", TarArchiveEntry.LF_NORMAL),
        "refusing to extract archive entry '/etc/cron.d/evil': it is an absolute path");
  }

  @Test
  void refusesLinksAndDevices() throws IOException {
    TarArchiveEntry symlink = entry("lib", TarArchiveEntry.LF_SYMLINK);
    symlink.setLinkName("/etc");
    assertRefused(symlink, "refusing to extract archive entry 'lib': it is a symbolic link");
    TarArchiveEntry hardLink = entry("passwd", TarArchiveEntry.LF_LINK);
    hardLink.setLinkName("/etc/passwd");
    assertRefused(hardLink, "it is a hard link");
    assertRefused(entry("sda", TarArchiveEntry.LF_BLK), "it is a device");
    assertRefused(entry("tty", TarArchiveEntry.LF_CHR), "it is a device");
    assertRefused(entry("pipe", TarArchiveEntry.LF_FIFO), "it is a FIFO");
  }

  @Test
  void anUnsafeEntryInBytesOtherThanTheRecordedOnesIsDamageNotTheEntry() throws IOException {
    byte[] stored = tarWith(entry("/etc/cron.d/evil", TarArchiveEntry.LF_NORMAL));
    String recorded = Sha256.hexOf("the archive as it was stored".getBytes(StandardCharsets.UTF_8));

    assertThatThrownBy(() -> extract(stored, ArchiveCodec.NONE, recorded, stored.length))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageStartingWith("archive sha256 mismatch: " + recorded + " was recorded when it was stored")
        .hasRootCauseMessage("refusing to extract archive entry '/etc/cron.d/evil': it is an absolute path");
    assertThat(restored).doesNotExist();
  }

  private void assertRefused(TarArchiveEntry unsafe, String message) throws IOException {
    assertRefused(tarWith(unsafe), message);
  }

  private void assertRefused(byte[] tar, String message) throws IOException {
    assertThatThrownBy(() -> extract(tar, ArchiveCodec.NONE, Sha256.hexOf(tar), tar.length))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining(message);
    assertThat(restored).doesNotExist();
    assertThat(temp.resolve("escaped")).doesNotExist();
  }

  /** As recorded: the stored bytes' sha256 and size; no bound on what they decompress to. */
  private void extract(byte[] stored, ArchiveCodec codec, String sha256, long storedBytes) throws IOException {
    new ArchiveReader().extract(new ByteArrayInputStream(stored), restored, codec,
        new ArchiveSummary(Long.MAX_VALUE, storedBytes, sha256));
  }

  /** Keeps leading slashes, which tar writers strip unless told otherwise. */
  private static TarArchiveEntry entry(String name, byte type) {
    return new TarArchiveEntry(name, type, true);
  }

  /** A well-formed file entry written first, so that the unsafe one must also be cleaned up after. */
  private static byte[] tarWith(TarArchiveEntry unsafe) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes)) {
      byte[] content = "harmless".getBytes(StandardCharsets.UTF_8);
      TarArchiveEntry harmless = new TarArchiveEntry("dir/harmless");
      harmless.setSize(content.length);
      tar.putArchiveEntry(harmless);
      tar.write(content);
      tar.closeArchiveEntry();
      tar.putArchiveEntry(unsafe);
      tar.closeArchiveEntry();
    }
    return bytes.toByteArray();
  }

  private record Stored(byte[] bytes, ArchiveSummary summary) {}

  private Stored archiveOfRandomFiles(ArchiveCodec codec) throws IOException {
    Path checkpoint = Files.createDirectories(temp.resolve("checkpoint"));
    Random random = new Random(7);
    for (int i = 0; i < 3; i++) {
      byte[] content = new byte[200_000];
      random.nextBytes(content);
      Files.write(checkpoint.resolve("pages-" + i + ".img"), content);
    }
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary = new ArchiveWriter().write(checkpoint, stored, codec);
    return new Stored(stored.toByteArray(), summary);
  }
}
