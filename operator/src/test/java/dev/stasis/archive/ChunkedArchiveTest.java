package dev.stasis.archive;

import dev.stasis.testing.Folders;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.ZstdInputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** A file archived in chunks while it grows comes back as the one file it became. */
class ChunkedArchiveTest {
  @TempDir Path temp;

  @ParameterizedTest
  @EnumSource(ArchiveCodec.class)
  void chunksOfAGrowingFileAreJoinedOnExtract(ArchiveCodec codec) throws IOException {
    Path images = Files.createDirectory(temp.resolve("images"));
    Path pages = images.resolve("pages-1.img");
    byte[] first = random(3_000_000, 1);
    byte[] second = random(2_500_000, 2);
    Files.write(pages, first);
    Files.writeString(images.resolve("pagemap-1.img"), "pagemap");
    ByteArrayOutputStream stored = new ByteArrayOutputStream();

    ArchiveSummary summary;
    try (OpenArchive archive = new ArchiveWriter().open(stored, codec)) {
      archive.addChunk("pages-1.img", 0, pages, 0, 2_000_000);
      Files.write(pages, second, StandardOpenOption.APPEND); // the file grows while it is archived
      archive.addChunk("pages-1.img", 1, pages, 2_000_000, 2_000_000);
      archive.addChunk("pages-1.img", 2, pages, 4_000_000, Files.size(pages) - 4_000_000);
      archive.addFile("pagemap-1.img", images.resolve("pagemap-1.img"));
      summary = archive.finish();
    }
    Path restored = temp.resolve("restored");
    new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()), restored, codec,
        summary);

    assertThat(Folders.filesIn(restored)).containsExactly("pagemap-1.img", "pages-1.img");
    assertThat(restored.resolve("pages-1.img")).hasSameBinaryContentAs(pages);
    assertThat(restored.resolve("pagemap-1.img")).hasContent("pagemap");
    assertThat(summary.storedBytes()).isEqualTo(stored.size());
    assertThat(summary.sha256()).isEqualTo(Sha256.hexOf(stored.toByteArray()));
    assertThat(entryNames(stored.toByteArray(), codec)).containsExactly(
        "pages-1.img.chunk-000000", "pages-1.img.chunk-000001", "pages-1.img.chunk-000002", "pagemap-1.img");
  }

  @Test
  void chunksOutOfOrderMakeTheArchiveInvalid() throws IOException {
    Path file = temp.resolve("pages");
    Files.write(file, random(100, 3));
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary;
    try (OpenArchive archive = new ArchiveWriter().open(stored, ArchiveCodec.NONE)) {
      archive.addChunk("pages-1.img", 0, file, 0, 50);
      archive.addChunk("pages-1.img", 2, file, 50, 50);
      summary = archive.finish();
    }
    Path restored = temp.resolve("restored");

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()), restored,
            ArchiveCodec.NONE, summary))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("'pages-1.img.chunk-000002' is out of order: chunk 1 of pages-1.img should come next");
    assertThat(restored).doesNotExist();
  }

  @Test
  void aFileBothWholeAndChunkedMakesTheArchiveInvalid() throws IOException {
    Path file = temp.resolve("pages");
    Files.write(file, random(100, 4));
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary;
    try (OpenArchive archive = new ArchiveWriter().open(stored, ArchiveCodec.NONE)) {
      archive.addFile("pages-1.img", file);
      archive.addChunk("pages-1.img", 0, file, 0, 100);
      summary = archive.finish();
    }

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()),
            temp.resolve("restored"), ArchiveCodec.NONE, summary))
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("holds both whole and in chunks");
  }

  @Test
  void chunkNamesAreReservedForChunks() throws IOException {
    Path file = Files.writeString(temp.resolve("x"), "x");
    try (OpenArchive archive = new ArchiveWriter().open(new ByteArrayOutputStream(), ArchiveCodec.ZSTD)) {
      assertThatThrownBy(() -> archive.addFile("pages-1.img.chunk-000000", file))
          .hasMessageContaining("reserved for files archived in chunks");
    }
  }

  @Test
  void aChunkBeyondTheEndOfItsFileFails() throws IOException {
    Path file = temp.resolve("pages");
    Files.write(file, random(100, 5));
    try (OpenArchive archive = new ArchiveWriter().open(new ByteArrayOutputStream(), ArchiveCodec.ZSTD)) {
      assertThatThrownBy(() -> archive.addChunk("pages-1.img", 0, file, 0, 200))
          .hasMessageContaining("ended at byte 100 while archiving it up to byte 200");
    }
  }

  private static byte[] random(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static List<String> entryNames(byte[] stored, ArchiveCodec codec) throws IOException {
    var in = codec == ArchiveCodec.ZSTD
        ? new ZstdInputStream(new ByteArrayInputStream(stored))
        : new ByteArrayInputStream(stored);
    List<String> names = new ArrayList<>();
    try (TarArchiveInputStream tar = new TarArchiveInputStream(in)) {
      for (TarArchiveEntry entry; (entry = tar.getNextEntry()) != null; ) {
        names.add(entry.getName());
      }
    }
    return names;
  }
}
