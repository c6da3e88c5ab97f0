package dev.stasis.agent.checkpoint;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.Chunker;
import dev.stasis.archive.dedup.PagemapAlignedChunker;
import dev.stasis.criu.DumpContents;
import dev.stasis.criu.GrowingPagemap;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;

/**
 * Stores the memory images of a deduplicated checkpoint (docs/dedup.md): each process's
 * {@code pages-<n>.img} is cut, while CRIU writes it, where its pagemap says memory runs start and
 * at every 128 KiB of address ({@link PagemapAlignedChunker}), each chunk named, compressed and (encrypted storage)
 * sealed on its own ({@link ChunkObjects}) on {@value #UPLOADS_IN_FLIGHT} threads, and only the
 * chunks the namespace did not hold when the checkpoint started are stored, in packs
 * ({@link PackedChunkStore}). The chunk index ({@link ChunkIndex}) follows them; the manifest,
 * written by the caller after the archive, makes the checkpoint complete.
 *
 * <p>The namespace's chunks are listed once, as CRIU starts, and what was listed is trusted: the
 * storage's chunk collection deletes no chunk while a checkpoint of the namespace is in flight, nor
 * one younger than its grace period. Nothing here deletes chunks: ones stored for a checkpoint that
 * then fails are referenced by no manifest and collected later.
 */
public final class ChunkedImagesUpload {
  static final int BLOCK_BYTES = 128 << 10;
  static final int UPLOADS_IN_FLIGHT = 16;
  /** Chunks cut ahead of their upload: bounds memory at this many blocks. */
  private static final int WINDOW = 4 * UPLOADS_IN_FLIGHT;
  /**
   * How often the pagemaps are looked at while CRIU writes them when the last look found nothing new:
   * a fraction of the time CRIU needs for a chunk's worth of pages, and cheap (a listing, a few reads).
   */
  private static final long POLL_MILLIS = 10;
  /**
   * While CRIU writes the images it holds the tree frozen: cutting, naming and uploading then take
   * only CPU that nothing else wants, so they cannot stretch the freeze; once the dump is complete
   * they go on at the upload's usual priority.
   */
  static final int WHILE_DUMPING_NICE = 19;

  private final ObjectStore store;
  private final String namespace;
  private final ChunkKey key;
  private final boolean encrypt;
  private final boolean compress;
  private final ArchiveLayout layout;
  private final String indexKey;
  private final PackedChunkStore chunks;
  /**
   * Done when {@link #listStored} is: pages are cut meanwhile (the listing of a large namespace can
   * take longer than the dump), and each chunk waits for it before it goes to {@link #chunks}.
   */
  private final CompletableFuture<Void> listing = new CompletableFuture<>();

  /**
   * @param encrypt whether the storage encrypts (chunks are sealed with {@code key})
   * @param codec the storage's compression, which each chunk gets on its own
   */
  public ChunkedImagesUpload(ObjectStore store, ArchiveLayout layout, ChunkKey key, boolean encrypt,
      ArchiveCodec codec) {
    this(store, layout, layout.chunkIndexKey(), key, encrypt, codec);
  }

  /** As above, with the chunk index at {@code indexKey} (a pod checkpoint's container's). */
  public ChunkedImagesUpload(ObjectStore store, ArchiveLayout layout, String indexKey, ChunkKey key, boolean encrypt,
      ArchiveCodec codec) {
    this.store = store;
    this.indexKey = indexKey;
    this.namespace = layout.namespace();
    this.key = key;
    this.encrypt = encrypt;
    this.compress = codec == ArchiveCodec.ZSTD;
    this.layout = layout;
    this.chunks = new PackedChunkStore(store, namespace, key, PackedChunkStore.PACK_BYTES);
  }

  /**
   * What was stored: the images left out of the archive, the manifest's {@code chunks}, the bytes
   * uploaded (new packs, their indexes and the chunk index), the chunks the images hold (each once),
   * how many were new, the pack indexes that were not trusted (their chunks were stored again), and
   * the image bytes cut before the dump was complete (while CRIU wrote it, or before the agent took
   * in that CRIU was done).
   */
  public record Stored(Set<String> images, Manifest.Chunks chunks, long newBytes, int distinctChunks, int uploadedChunks,
      List<StoredPackIndexes.Untrusted> untrustedPackIndexes, long cutWhileWriting) {}

  /** What the namespace stores, found as CRIU starts: one LIST of its loose chunks, one of its packs, the pack indexes. */
  public void listStored() throws IOException {
    try {
      chunks.list();
      listing.complete(null);
    } catch (IOException | RuntimeException e) {
      listing.completeExceptionally(e);
      throw e;
    }
  }

  /**
   * Cuts and stores the pages images CRIU writes into {@code imagesDir}, while it writes them, and
   * uploads their index once {@code imagesComplete} says CRIU is done; {@code cut} is told the image
   * bytes cut so far as each chunk is handed to the store (which holds the cutting back to its own
   * pace): the pass after CRIU is done cuts all that is left, most of a fast dump. Each pass reads
   * the whole entries each process's pagemap has gained and cuts
   * the pages they list as soon as the pages file holds them ({@link PagemapAlignedChunker.Cutting}:
   * the boundaries of a cut after CRIU exits). Interrupted (CRIU failed): throws, and nothing is
   * indexed.
   */
  public Stored store(Path imagesDir, BooleanSupplier imagesComplete, LongConsumer cut)
      throws IOException, InterruptedException {
    ExecutorService uploads = uploadThreads();
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(this::objects);
    Map<Long, FollowedImage> followed = new TreeMap<>();
    // Upload threads start from this one, at its priority; after the dump each raises its own once.
    CpuPriority.Held whileDumping = CpuPriority.currentThreadAt(WHILE_DUMPING_NICE);
    AtomicBoolean dumped = new AtomicBoolean();
    ThreadLocal<Boolean> raised = ThreadLocal.withInitial(() -> false);
    ArrayDeque<Handed> window = new ArrayDeque<>();
    AtomicLong cutWhileWriting = new AtomicLong(); // touched by this thread only
    AtomicLong handedOver = new AtomicLong(); // touched by this thread only
    ChunkSinkFor sinks = image -> (bytes, offset, length) -> {
      if (!imagesComplete.getAsBoolean()) {
        cutWhileWriting.addAndGet(length);
      }
      byte[] chunk = Arrays.copyOfRange(bytes, offset, offset + length);
      // The one hand-over to the store side.
      window.add(new Handed(image.chunks, uploads.submit(() -> {
        if (dumped.get() && !raised.get()) {
          CpuPriority.lowerCurrentThread(StreamingArchiveUpload.UPLOAD_NICE);
          raised.set(true);
        }
        listing.get();
        return chunks.store(objects.get(), chunk);
      })));
      cut.accept(handedOver.addAndGet(length));
      while (window.size() >= WINDOW) {
        Handed oldest = window.poll();
        oldest.into().add(await(oldest.chunk()));
      }
    };
    try {
      while (true) {
        boolean complete = imagesComplete.getAsBoolean(); // before the pass: a complete pass sees every byte
        if (complete && !dumped.getAndSet(true)) {
          whileDumping.close();
        }
        for (var pagemap : DumpContents.processPagemaps(imagesDir).entrySet()) {
          if (!followed.containsKey(pagemap.getKey())) {
            followed.put(pagemap.getKey(), new FollowedImage(pagemap.getValue(), sinks));
          }
        }
        boolean progressed = false;
        for (FollowedImage image : followed.values()) {
          progressed |= image.advance(complete);
        }
        if (complete) {
          break;
        }
        if (Thread.interrupted()) {
          throw new InterruptedIOException("storing the chunks was interrupted");
        }
        if (!progressed) {
          Thread.sleep(POLL_MILLIS);
        }
      }
      while (!window.isEmpty()) {
        Handed oldest = window.poll();
        oldest.into().add(await(oldest.chunk()));
      }
      List<Indexed> indexed = new ArrayList<>();
      for (FollowedImage image : followed.values()) {
        if (image.bytes() > 0) { // else its pagemap lists no memory in a pages image: the file goes into the archive
          indexed.add(new Indexed(image.pagesFile().getFileName().toString(), image.chunks, image.bytes()));
        }
      }
      return finish(indexed, cutWhileWriting.get());
    } finally {
      if (!dumped.getAndSet(true)) {
        whileDumping.close();
      }
      for (FollowedImage image : followed.values()) {
        image.close();
      }
      uploads.shutdownNow();
      uploads.awaitTermination(1, TimeUnit.MINUTES);
      chunks.close();
    }
  }

  /** A pages image that is complete already (in a runtime's archive): its data, and where its pagemap puts it. */
  public record CompleteImage(String fileName, List<PagemapAlignedChunker.MappedRun> runs, InputStream pages) {}

  /**
   * Cuts and stores complete pages images ({@link PagemapAlignedChunker}, as {@link #store(Path,
   * BooleanSupplier, LongConsumer)} cuts them) in order, and uploads their index, which lists them
   * in that order; {@code cut} is told the image bytes cut so far.
   */
  public Stored store(List<CompleteImage> images, LongConsumer cut) throws IOException, InterruptedException {
    ExecutorService uploads = uploadThreads();
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(this::objects);
    ArrayDeque<Handed> window = new ArrayDeque<>();
    long[] cutBytes = {0};
    try {
      List<Indexed> indexed = new ArrayList<>();
      for (CompleteImage image : images) {
        List<ChunkIndex.ChunkRef> refs = new ArrayList<>();
        new PagemapAlignedChunker(image.runs(), BLOCK_BYTES).cut(image.pages(), (bytes, offset, length) -> {
          byte[] chunk = Arrays.copyOfRange(bytes, offset, offset + length);
          window.add(new Handed(refs, uploads.submit(() -> {
            listing.get();
            return chunks.store(objects.get(), chunk);
          })));
          while (window.size() >= WINDOW) {
            Handed oldest = window.poll();
            oldest.into().add(await(oldest.chunk()));
          }
          cutBytes[0] += length;
          cut.accept(cutBytes[0]);
        });
        indexed.add(new Indexed(image.fileName(), refs, image.runs().stream().mapToLong(r -> r.length()).sum()));
      }
      while (!window.isEmpty()) {
        Handed oldest = window.poll();
        oldest.into().add(await(oldest.chunk()));
      }
      return finish(indexed, 0);
    } finally {
      uploads.shutdownNow();
      uploads.awaitTermination(1, TimeUnit.MINUTES);
      chunks.close();
    }
  }

  /** An image cut into chunks: what the index lists for it. */
  private record Indexed(String fileName, List<ChunkIndex.ChunkRef> chunks, long bytes) {}

  /** Once every chunk is handed over: waits for the packs, then uploads the index of {@code images}. */
  private Stored finish(List<Indexed> images, long cutWhileWriting) throws IOException, InterruptedException {
    await(listing); // a listing that failed fails the checkpoint, chunks or none
    chunks.finish();
    Set<String> names = new HashSet<>();
    ByteArrayOutputStream indexBytes = new ByteArrayOutputStream();
    ChunkIndex.Writer index = new ChunkIndex.Writer(indexBytes);
    long imagesBytes = 0;
    for (Indexed image : images) {
      if (!names.add(image.fileName())) {
        throw new IOException("two process pagemaps name " + image.fileName() + ": not a dump CRIU wrote");
      }
      index.startImage(image.fileName());
      for (ChunkIndex.ChunkRef chunk : image.chunks()) {
        index.chunk(chunk);
      }
      index.endImage(image.bytes());
      imagesBytes += image.bytes();
    }
    index.finish();
    byte[] indexObject = indexBytes.toByteArray();
    store.put(indexKey, indexObject);
    Manifest.Chunks stored = new Manifest.Chunks();
    stored.indexKey = indexKey;
    stored.indexSha256 = Sha256.hexOf(indexObject);
    stored.indexBytes = (long) indexObject.length;
    stored.codec = compress ? ArchiveCodec.ZSTD : ArchiveCodec.NONE;
    stored.encryption = encrypt ? ChunkCipher.ALGORITHM : Manifest.Encryption.NONE.algorithm;
    stored.keyId = key.keyId();
    stored.imagesBytes = imagesBytes;
    return new Stored(Set.copyOf(names), stored, chunks.newBytes() + indexObject.length, chunks.distinctChunks(),
        chunks.newChunks(), chunks.untrusted(), cutWhileWriting);
  }

  private ExecutorService uploadThreads() {
    return Executors.newFixedThreadPool(UPLOADS_IN_FLIGHT, runnable -> {
      Thread thread = new Thread(runnable, "chunk-upload-" + layout.checkpointName());
      thread.setDaemon(true);
      return thread;
    });
  }

  /** A chunk handed to the upload threads, and the image's chunk list it goes into. */
  private record Handed(List<ChunkIndex.ChunkRef> into, Future<ChunkIndex.ChunkRef> chunk) {}

  private interface ChunkSinkFor {
    Chunker.ChunkSink of(FollowedImage image);
  }

  /**
   * One process's pages image, cut as far as its pagemap and pages file on disk allow. Touched by
   * the cutting thread only.
   */
  private static final class FollowedImage implements AutoCloseable {
    private final GrowingPagemap pagemap;
    private final PagemapAlignedChunker.Cutting cutting;
    /** Runs read from the pagemap whose pages are not cut yet. */
    private final ArrayDeque<DumpContents.MemoryRun> runs = new ArrayDeque<>();
    /** The image's chunks, in order, as their uploads finish. */
    final List<ChunkIndex.ChunkRef> chunks = new ArrayList<>();
    private InputStream pages;

    FollowedImage(Path pagemap, ChunkSinkFor sinks) {
      this.pagemap = new GrowingPagemap(pagemap);
      this.cutting = new PagemapAlignedChunker.Cutting(BLOCK_BYTES, sinks.of(this));
    }

    /**
     * Cuts the runs whose pages are on disk; once {@code complete}, all of them, and the image must
     * then match its pagemap exactly.
     *
     * @return whether anything was cut
     */
    boolean advance(boolean complete) throws IOException {
      runs.addAll(pagemap.read());
      boolean progressed = false;
      while (!runs.isEmpty()) {
        DumpContents.MemoryRun run = runs.peek();
        if (!complete && onDisk() < cutting.offset() + run.bytes()) {
          break; // CRIU has written the entry but not yet all of its pages
        }
        if (pages == null) {
          pages = Files.newInputStream(pagesFile());
        }
        cutting.run(new PagemapAlignedChunker.MappedRun(run.address(), run.bytes()), pages);
        runs.poll();
        progressed = true;
      }
      if (complete) {
        pagemap.requireWhole();
        cutting.finish();
        if (pages != null && pages.read() >= 0) {
          throw new IOException("the pages image " + pagesFile().getFileName() + " is longer than the "
              + cutting.offset() + " bytes its pagemap lists");
        }
      }
      return progressed;
    }

    private long onDisk() throws IOException {
      try {
        return Files.size(pagesFile());
      } catch (NoSuchFileException e) {
        return 0;
      }
    }

    Path pagesFile() throws IOException {
      return pagemap.pagesFile().orElseThrow(() -> new IOException("a pagemap lists memory before its head"));
    }

    long bytes() {
      return cutting.offset();
    }

    @Override
    public void close() throws IOException {
      pagemap.close();
      if (pages != null) {
        pages.close();
      }
    }
  }

  private ChunkObjects objects() {
    return ChunkObjects.forNamespace(key, namespace, encrypt, compress);
  }

  private static <T> T await(Future<T> chunk) throws IOException {
    try {
      return chunk.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while storing the chunks");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() instanceof ExecutionException nested ? nested.getCause() : e.getCause();
      throw cause instanceof IOException io ? io : new IOException("storing a chunk failed: " + cause, cause);
    }
  }

}
