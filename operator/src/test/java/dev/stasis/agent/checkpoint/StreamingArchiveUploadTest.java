package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.checkpoint.StreamingArchiveUpload.WhileDumping;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.storage.FileSystemObjectStore;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.List;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The upload of a checkpoint runs while its images are still being written when the tree stays
 * frozen until it is stored, only once they are complete when CRIU resumes the tree itself, and
 * stores them whole either way.
 */
class StreamingArchiveUploadTest {
  static final long CHUNK = 1 << 20;
  static final String KEY = "ns/ckpt-uid/archive";

  @TempDir Path temp;

  @ParameterizedTest(name = "{0}, encrypted: {1}")
  @CsvSource({"NONE, false", "ZSTD, false", "NONE, true", "ZSTD, true"})
  void pagesAreStoredWhileTheyAreWrittenAndEveryImageEndsUpInTheArchive(ArchiveCodec codec, boolean encrypted)
      throws Exception {
    byte[] keyBytes = random(ArchiveKey.BYTES);
    BoundKey key = encrypted ? BoundKey.of(new ArchiveKey("k1", keyBytes), ArchiveIdentity.ofProcess("ns", "uid")) : null;
    Path images = temp.resolve("images");
    Path storage = temp.resolve("storage");
    byte[] memory = random(5 * (int) CHUNK + 12345);
    List<Long> archived = new CopyOnWriteArrayList<>();
    try (var store = new FileSystemObjectStore(storage);
        var upload = StreamingArchiveUpload.start(store.upload(KEY), codec, key, null, images, WhileDumping.ARCHIVE, CHUNK,
            archived::add, "test")) {
      // Like CRIU: the folder appears, then the pages grow, then the small images are written.
      Files.createDirectories(images);
      Path pages = images.resolve("pages-1.img");
      Files.write(pages, slice(memory, 0, 3 * CHUNK + 10));
      if (codec == ArchiveCodec.NONE) {
        // Uncompressed, storage visibly holds the first chunks while the "dump" is still going.
        await().atMost(Duration.ofSeconds(10)).until(() -> partialUploadBytes(storage) >= 2 * CHUNK);
      }
      Files.write(pages, slice(memory, 3 * CHUNK + 10, memory.length), StandardOpenOption.APPEND);
      Files.write(images.resolve("pages-2.img"), random(100));
      Files.writeString(images.resolve("pagemap-1.img"), "pagemap");

      ArchiveSummary summary = upload.finish().archive();
      assertThat(archived).as("the progress is told the tar bytes as they grow, the whole archive last")
          .isSorted().hasSizeGreaterThan(1).last().isEqualTo(summary.sizeBytes());

      Path restored = temp.resolve("restored");
      try (InputStream in = store.open(KEY)) {
        new ArchiveReader().extract(in, restored, codec, summary, key);
      }
      assertThat(restored.resolve("pages-1.img")).hasBinaryContent(memory);
      assertThat(restored.resolve("pages-2.img")).hasSameBinaryContentAs(images.resolve("pages-2.img"));
      assertThat(restored.resolve("pagemap-1.img")).hasContent("pagemap");
      try (Stream<Path> files = Files.list(restored)) {
        assertThat(files).hasSize(3);
      }
    }
  }

  /**
   * A tree CRIU resumes after its dump is frozen while CRIU writes: nothing of its images is read or
   * sent before CRIU is done (bench/analysis.md, "Frozen time"), and the archive is still whole.
   */
  @Test
  void whenCriuResumesTheTreeNothingIsArchivedBeforeTheImagesAreComplete() throws Exception {
    Path images = Files.createDirectories(temp.resolve("images"));
    Path storage = temp.resolve("storage");
    byte[] memory = random(4 * (int) CHUNK + 7);
    List<Long> archived = new CopyOnWriteArrayList<>();
    try (var store = new FileSystemObjectStore(storage);
        var upload = StreamingArchiveUpload.start(store.upload(KEY), ArchiveCodec.NONE, null, null, images,
            WhileDumping.WAIT, CHUNK, archived::add, "test")) {
      Files.write(images.resolve("pages-1.img"), memory);
      await("nothing archived while CRIU writes").during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3))
          .until(() -> archived.isEmpty() && partialUploadBytes(storage) == 0);
      Files.writeString(images.resolve("pagemap-1.img"), "pagemap");

      ArchiveSummary summary = upload.finish().archive();
      Path restored = temp.resolve("restored");
      try (InputStream in = store.open(KEY)) {
        new ArchiveReader().extract(in, restored, ArchiveCodec.NONE, summary, null);
      }
      assertThat(restored.resolve("pages-1.img")).hasBinaryContent(memory);
      assertThat(restored.resolve("pagemap-1.img")).hasContent("pagemap");
    }
  }

  @Test
  void closingWithoutFinishingLeavesNothingInStorage() throws Exception {
    Path images = Files.createDirectories(temp.resolve("images"));
    Path storage = temp.resolve("storage");
    Files.write(images.resolve("pages-1.img"), random(4 * (int) CHUNK));
    try (var store = new FileSystemObjectStore(storage)) {
      var upload = StreamingArchiveUpload.start(store.upload(KEY), ArchiveCodec.NONE, null, null, images,
          WhileDumping.ARCHIVE, CHUNK, bytes -> {}, "test");
      await().atMost(Duration.ofSeconds(10)).until(() -> partialUploadBytes(storage) >= 2 * CHUNK);

      upload.close(); // CRIU failed

      assertThat(store.list("")).isEmpty();
      try (Stream<Path> files = Files.walk(storage)) {
        assertThat(files.filter(Files::isRegularFile)).isEmpty();
      }
    }
  }

  /** Bytes in storage's hidden, not yet committed upload file. */
  private static long partialUploadBytes(Path storage) throws IOException {
    if (!Files.exists(storage)) {
      return 0;
    }
    try (Stream<Path> files = Files.walk(storage)) {
      return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  private static byte[] random(int size) {
    byte[] bytes = new byte[size];
    new Random(size).nextBytes(bytes);
    return bytes;
  }

  private static byte[] slice(byte[] bytes, long from, long to) {
    return Arrays.copyOfRange(bytes, (int) from, (int) to);
  }
}
