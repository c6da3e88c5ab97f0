package dev.stasis.agent.checkpoint;

import static dev.stasis.criu.PagemapImages.PE_PRESENT;
import static dev.stasis.criu.PagemapImages.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.criu.PagemapImages;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A deduplicated checkpoint's memory images cut while a dump grows under them, written as CRIU
 * writes one: the pagemap through a buffer flushed wherever it fills, the pages unbuffered.
 */
class ChunkedImagesUploadTest {
  private static final String NS = "team-a";
  private static final ChunkKey CHUNK_KEY = ChunkKey.of(new ArchiveKey("chunks-1", new byte[32]), NS);
  private static final int PAGE = 4096;
  /** CRIU's buffered image writer flushes when its buffer fills: here in the middle of entries. */
  private static final int PAGEMAP_FLUSH_BYTES = 37;

  @TempDir
  Path dir;
  private ObjectStore store;
  private final ExecutorService cutter = Executors.newSingleThreadExecutor();

  @BeforeEach
  void openStore() {
    store = new FileSystemObjectStore(dir.resolve("bucket"));
  }

  @AfterEach
  void close() {
    cutter.shutdownNow();
    store.close();
  }

  @Test
  void chunksAreCutWhileCriuWritesWithTheBoundariesOfACutAfterItExits() throws Exception {
    List<Dump> dump = List.of(new Dump(42, 1, entries(0x7f0000000000L, 40, 16), new Random(1)),
        new Dump(43, 2, entries(0x100000000L + 3 * PAGE, 9, 5), new Random(2)));
    Path images = Files.createDirectories(dir.resolve("images"));
    AtomicBoolean criuDone = new AtomicBoolean();
    ArchiveLayout layout = new ArchiveLayout(NS, "while", "uid-1");
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.ZSTD);
    upload.listStored();
    AtomicLong cut = new AtomicLong();
    Future<ChunkedImagesUpload.Stored> storing = cutter.submit(() -> upload.store(images, criuDone::get, cut::set));

    dump.get(0).writeFirst(images, 25); // the first process half dumped, its pagemap flushed mid-entry
    await().atMost(Duration.ofMinutes(1)).until(() -> cut.get() > 0);
    assertThat(storing).isNotDone();
    dump.get(0).writeRest(images);
    dump.get(1).writeFirst(images, 4);
    dump.get(1).writeRest(images);
    criuDone.set(true);
    ChunkedImagesUpload.Stored whileWriting = storing.get();

    // The same dump, complete, cut after CRIU exited, into another storage.
    ObjectStore other = new FileSystemObjectStore(dir.resolve("other-bucket"));
    ArchiveLayout afterLayout = new ArchiveLayout(NS, "after", "uid-2");
    ChunkedImagesUpload after = new ChunkedImagesUpload(other, afterLayout, CHUNK_KEY, false, ArchiveCodec.ZSTD);
    after.listStored();
    ChunkedImagesUpload.Stored afterExit = after.store(images, () -> true, progress -> {});

    assertThat(index(store, layout)).isEqualTo(index(other, afterLayout)).contains("pages-1.img", "pages-2.img");
    assertThat(whileWriting.images()).containsExactlyInAnyOrder("pages-1.img", "pages-2.img");
    assertThat(whileWriting.chunks().imagesBytes).isEqualTo(afterExit.chunks().imagesBytes)
        .isEqualTo((40 * 16 + 9 * 5) * (long) PAGE);
    assertThat(whileWriting.cutWhileWriting()).as("bytes handed over before CRIU was done").isPositive();
    assertThat(afterExit.cutWhileWriting()).isZero();
    other.close();
  }

  @Test
  void pagesAreCutWhileTheChunkFolderIsStillBeingListedAndUploadedOnlyOnceItIs() throws Exception {
    Path images = completeDump(5);
    ArchiveLayout layout = new ArchiveLayout(NS, "listing", "uid-6");
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
    AtomicLong cut = new AtomicLong();
    Future<ChunkedImagesUpload.Stored> storing = cutter.submit(() -> upload.store(images, () -> true, cut::set));

    await().atMost(Duration.ofMinutes(1)).until(() -> cut.get() == 40 * 16 * (long) PAGE);
    await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(5))
        .until(() -> !storing.isDone() && chunksInStore().isEmpty());
    upload.listStored();

    assertThat(storing.get().uploadedChunks()).isPositive();
    assertThat(store.exists(layout.chunkIndexKey())).isTrue();
  }

  /**
   * A fast dump is complete before the first pass: that one pass cuts all of it, and the progress
   * moves as each chunk is handed to the store, not once at its end.
   */
  @Test
  void aDumpCutInOnePassAfterCriuIsDoneReportsEachChunk() throws Exception {
    Path images = completeDump(6);
    ArchiveLayout layout = new ArchiveLayout(NS, "one-pass", "uid-7");
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
    upload.listStored();
    List<Long> told = new CopyOnWriteArrayList<>();

    ChunkedImagesUpload.Stored stored = upload.store(images, () -> true, told::add);

    long chunks = 40 * 16 * (long) PAGE / ChunkedImagesUpload.BLOCK_BYTES;
    assertThat(told).as("one progress per chunk").hasSizeGreaterThanOrEqualTo((int) chunks).isSorted()
        .doesNotHaveDuplicates().last().isEqualTo(stored.chunks().imagesBytes);
  }

  /** The images folder of a finished dump of one process: 40 entries of 16 pages. */
  private Path completeDump(long seed) throws IOException {
    Dump dump = new Dump(42, 1, entries(0x7f0000000000L, 40, 16), new Random(seed));
    Path images = Files.createDirectories(dir.resolve("images"));
    dump.writeFirst(images, 40);
    dump.writeRest(images);
    return images;
  }

  @Test
  void criuFailingMidDumpLeavesNoIndex() throws Exception {
    Dump dump = new Dump(42, 1, entries(0x7f0000000000L, 40, 16), new Random(3));
    Path images = Files.createDirectories(dir.resolve("images"));
    ArchiveLayout layout = new ArchiveLayout(NS, "failed", "uid-3");
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
    upload.listStored();
    AtomicLong cut = new AtomicLong();
    Future<ChunkedImagesUpload.Stored> storing = cutter.submit(() -> upload.store(images, () -> false, cut::set));
    dump.writeFirst(images, 20);
    await().atMost(Duration.ofMinutes(1)).until(() -> cut.get() > 0);

    storing.cancel(true); // CRIU failed: the upload is closed, which interrupts its follower

    cutter.shutdown();
    assertThat(cutter.awaitTermination(1, TimeUnit.MINUTES)).isTrue();
    assertThat(store.exists(layout.chunkIndexKey())).isFalse();
  }

  @Test
  void aDumpWhosePagemapEndsInsideAnEntryWhenCriuIsDoneIsRefused() throws Exception {
    Dump dump = new Dump(42, 1, entries(0x7f0000000000L, 40, 16), new Random(4));
    Path images = Files.createDirectories(dir.resolve("images"));
    dump.writeFirst(images, 20);
    ArchiveLayout layout = new ArchiveLayout(NS, "cut-short", "uid-4");
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
    upload.listStored();

    assertThatThrownBy(() -> upload.store(images, () -> true, cut -> {}))
        .isInstanceOf(IOException.class).hasMessageContaining("pagemap-42.img ends inside an entry");
    assertThat(store.exists(layout.chunkIndexKey())).isFalse();
  }

  @Test
  void aStoreInterruptedWhileCriuWritesSaysSo() throws Exception {
    Path images = Files.createDirectories(dir.resolve("images"));
    ChunkedImagesUpload upload = new ChunkedImagesUpload(store, new ArchiveLayout(NS, "stopped", "uid-5"), CHUNK_KEY,
        false, ArchiveCodec.NONE);
    Future<ChunkedImagesUpload.Stored> storing = cutter.submit(() -> {
      Thread.currentThread().interrupt();
      return upload.store(images, () -> false, cut -> {});
    });

    assertThatThrownBy(storing::get).isInstanceOf(ExecutionException.class)
        .cause().isInstanceOfAny(InterruptedIOException.class, InterruptedException.class);
  }

  private List<String> chunksInStore() throws IOException {
    List<String> keys = new ArrayList<>();
    store.forEach(ArchiveLayout.chunkPrefix(NS), object -> keys.add(object.key()));
    return keys;
  }

  /** The index as text: image names, chunk names and lengths, image sizes and digests, in order. */
  private static String index(ObjectStore store, ArchiveLayout layout) throws IOException {
    StringBuilder text = new StringBuilder();
    ChunkIndex.read(new ByteArrayInputStream(store.read(layout.chunkIndexKey())), new ChunkIndex.Visitor() {
      @Override
      public void image(String fileName) {
        text.append(fileName).append('\n');
      }

      @Override
      public void chunk(String fileName, ChunkIndex.ChunkRef chunk) {
        text.append(chunk.name()).append(' ').append(chunk.bytes()).append('\n');
      }

      @Override
      public void imageEnd(String fileName, long sizeBytes, String sha256) {
        text.append(sizeBytes).append(' ').append(sha256).append('\n');
      }
    });
    return text.toString();
  }

  /** {@code count} pagemap entries of {@code pages} pages each from {@code address}: every third one after a gap. */
  private static List<long[]> entries(long address, int count, int pages) {
    List<long[]> entries = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      entries.add(new long[] {address, pages});
      address += (long) pages * PAGE + (i % 3 == 2 ? 7L * PAGE : 0);
    }
    return entries;
  }

  /** One process's dump, written as CRIU writes it: per entry, the entry into a buffer, its pages to the file. */
  private static final class Dump {
    private final int pid;
    private final int pagesId;
    private final List<long[]> entries;
    private final Random random;
    private int written;

    Dump(int pid, int pagesId, List<long[]> entries, Random random) {
      this.pid = pid;
      this.pagesId = pagesId;
      this.entries = entries;
      this.random = random;
    }

    /** Writes the first {@code count} entries: all their pages, the pagemap up to its last flush. */
    void writeFirst(Path images, int count) throws IOException {
      Files.write(images.resolve("pages-" + pagesId + ".img"), pages(0, count));
      byte[] pagemap = pagemap(0, count);
      Files.write(images.resolve("pagemap-" + pid + ".img"),
          Arrays.copyOf(pagemap, pagemap.length / PAGEMAP_FLUSH_BYTES * PAGEMAP_FLUSH_BYTES));
      written = count;
    }

    /** The rest of the dump, and the pagemap's last flush when CRIU closes the image. */
    void writeRest(Path images) throws IOException {
      Files.write(images.resolve("pages-" + pagesId + ".img"), pages(written, entries.size()), StandardOpenOption.APPEND);
      byte[] all = pagemap(0, entries.size());
      long flushed = Files.size(images.resolve("pagemap-" + pid + ".img"));
      Files.write(images.resolve("pagemap-" + pid + ".img"),
          Arrays.copyOfRange(all, (int) flushed, all.length), StandardOpenOption.APPEND);
    }

    private byte[] pages(int from, int to) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      for (long[] entry : entries.subList(from, to)) {
        byte[] pages = new byte[(int) entry[1] * PAGE];
        random.nextBytes(pages);
        out.writeBytes(pages);
      }
      return out.toByteArray();
    }

    private byte[] pagemap(int from, int to) {
      List<byte[]> messages = new ArrayList<>(List.of(message(1, pagesId)));
      for (long[] entry : entries.subList(from, to)) {
        messages.add(message(1, entry[0], 2, entry[1], 4, PE_PRESENT));
      }
      return PagemapImages.pagemap(messages.toArray(byte[][]::new));
    }
  }
}
