package dev.stasis.agent.checkpoint;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PagemapAlignedChunker;
import dev.stasis.criu.DumpContents;
import dev.stasis.storage.ObjectStore;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * Stores the memory images of a deduplicated checkpoint (docs/dedup.md): each process's
 * {@code pages-<n>.img} is cut where its pagemap says memory runs start and at every 128 KiB of
 * address ({@link PagemapAlignedChunker}), each chunk named, compressed and (encrypted storage)
 * sealed on its own ({@link ChunkObjects}) on {@value #UPLOADS_IN_FLIGHT} threads, and only the
 * chunks the namespace's chunk folder did not hold when the checkpoint started are uploaded. The
 * chunk index ({@link ChunkIndex}) follows them; the manifest, written by the caller after the
 * archive, makes the checkpoint complete.
 *
 * <p>The folder is listed once, before CRIU runs, and what it listed is trusted: the storage's
 * chunk collection deletes no chunk while a checkpoint of the namespace is in flight, nor one
 * younger than its grace period. Nothing here deletes chunks: ones uploaded for a checkpoint that
 * then fails are referenced by no manifest and collected later.
 */
public final class ChunkedImagesUpload {
  static final int BLOCK_BYTES = 128 << 10;
  static final int UPLOADS_IN_FLIGHT = 16;
  /** Chunks cut ahead of their upload: bounds memory at this many blocks. */
  private static final int WINDOW = 4 * UPLOADS_IN_FLIGHT;

  private final ObjectStore store;
  private final String namespace;
  private final ChunkKey key;
  private final boolean encrypt;
  private final boolean compress;
  private final ArchiveLayout layout;
  /** Chunks the folder held when listed: name to stored bytes. Only read once listed, by the upload threads. */
  private final Map<String, Long> listed = new HashMap<>();
  private final AtomicLong newBytes = new AtomicLong();

  /**
   * @param encrypt whether the storage encrypts (chunks are sealed with {@code key})
   * @param codec the storage's compression, which each chunk gets on its own
   */
  public ChunkedImagesUpload(ObjectStore store, ArchiveLayout layout, ChunkKey key, boolean encrypt,
      ArchiveCodec codec) {
    this.store = store;
    this.namespace = layout.namespace();
    this.key = key;
    this.encrypt = encrypt;
    this.compress = codec == ArchiveCodec.ZSTD;
    this.layout = layout;
  }

  /**
   * What was stored: the images left out of the archive, the manifest's {@code chunks}, the bytes
   * uploaded (new chunks and the index), the chunks the images hold (each once) and how many were new.
   */
  public record Stored(Set<String> images, Manifest.Chunks chunks, long newBytes, int distinctChunks, int uploadedChunks) {}

  /** One LIST of the namespace's chunk folder, before CRIU runs. */
  public void listStored() throws IOException {
    store.forEach(ArchiveLayout.chunkPrefix(namespace), object -> ArchiveLayout.ofChunkKey(object.key())
        .filter(chunk -> chunk.namespace().equals(namespace))
        .ifPresent(chunk -> listed.put(chunk.name(), object.sizeBytes())));
  }

  /**
   * Cuts and stores the pages images of the complete dump in {@code imagesDir} and uploads their
   * index; {@code stored} is told the image bytes whose chunks are in storage so far, as they get there.
   */
  public Stored store(Path imagesDir, LongConsumer stored) throws IOException, InterruptedException {
    ExecutorService uploads = Executors.newFixedThreadPool(UPLOADS_IN_FLIGHT, runnable -> {
      Thread thread = new Thread(runnable, "chunk-upload-" + layout.checkpointName());
      thread.setDaemon(true);
      return thread;
    });
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(this::objects);
    Map<String, CompletableFuture<Integer>> uploading = new ConcurrentHashMap<>();
    Set<String> named = ConcurrentHashMap.newKeySet();
    try {
      Set<String> images = new HashSet<>();
      ByteArrayOutputStream indexBytes = new ByteArrayOutputStream();
      ChunkIndex.Writer index = new ChunkIndex.Writer(indexBytes);
      long imagesBytes = 0;
      long[] indexed = {0};
      for (DumpContents.PagesImage image : DumpContents.pagesImages(imagesDir)) {
        String fileName = image.file().getFileName().toString();
        if (!images.add(fileName)) {
          throw new IOException("two process pagemaps name " + fileName + ": not a dump CRIU wrote");
        }
        index.startImage(fileName);
        ArrayDeque<Future<ChunkIndex.ChunkRef>> window = new ArrayDeque<>();
        MessageDigest sha256 = Sha256.newDigest();
        long[] imageBytes = {0};
        var chunker = new PagemapAlignedChunker(image.runs().stream()
            .map(run -> new PagemapAlignedChunker.MappedRun(run.address(), run.bytes())).toList(), BLOCK_BYTES);
        try (InputStream in = new DigestInputStream(new BufferedInputStream(Files.newInputStream(image.file()),
            BLOCK_BYTES), sha256)) {
          chunker.cut(in, (bytes, offset, length) -> {
            byte[] chunk = Arrays.copyOfRange(bytes, offset, offset + length);
            window.add(uploads.submit(() -> store(objects.get(), chunk, named, uploading)));
            imageBytes[0] += length;
            if (window.size() >= WINDOW) {
              stored.accept(indexed[0] += index(index, window.poll()));
            }
            if (Thread.interrupted()) {
              throw new InterruptedIOException("storing the chunks was interrupted");
            }
          });
        }
        while (!window.isEmpty()) {
          stored.accept(indexed[0] += index(index, window.poll()));
        }
        index.endImage(imageBytes[0], Sha256.hex(sha256.digest()));
        imagesBytes += imageBytes[0];
      }
      index.finish();
      byte[] indexObject = indexBytes.toByteArray();
      store.put(layout.chunkIndexKey(), indexObject);
      Manifest.Chunks chunks = new Manifest.Chunks();
      chunks.indexKey = layout.chunkIndexKey();
      chunks.indexSha256 = Sha256.hexOf(indexObject);
      chunks.indexBytes = (long) indexObject.length;
      chunks.codec = compress ? ArchiveCodec.ZSTD : ArchiveCodec.NONE;
      chunks.encryption = encrypt ? ChunkCipher.ALGORITHM : Manifest.Encryption.NONE.algorithm;
      chunks.keyId = key.keyId();
      chunks.imagesBytes = imagesBytes;
      return new Stored(Set.copyOf(images), chunks, newBytes.get() + indexObject.length, named.size(),
          uploading.size());
    } finally {
      uploads.shutdownNow();
      uploads.awaitTermination(1, TimeUnit.MINUTES);
    }
  }

  private ChunkObjects objects() {
    return ChunkObjects.forNamespace(key, namespace, encrypt, compress);
  }

  /**
   * On an upload thread: names the chunk and stores it unless the listing had it or another thread
   * of this checkpoint stores it (then waits for that one); its reference for the index.
   */
  private ChunkIndex.ChunkRef store(ChunkObjects objects, byte[] chunk, Set<String> named,
      Map<String, CompletableFuture<Integer>> uploading) throws IOException, InterruptedException, ExecutionException {
    String name = objects.name(chunk, 0, chunk.length);
    named.add(name);
    Long listedBytes = listed.get(name);
    if (listedBytes != null) {
      return new ChunkIndex.ChunkRef(name, chunk.length, Math.toIntExact(listedBytes));
    }
    CompletableFuture<Integer> mine = new CompletableFuture<>();
    CompletableFuture<Integer> other = uploading.putIfAbsent(name, mine);
    if (other != null) {
      return new ChunkIndex.ChunkRef(name, chunk.length, other.get());
    }
    try {
      byte[] object = objects.object(name, chunk, 0, chunk.length);
      store.put(ArchiveLayout.chunkKey(namespace, name), object);
      newBytes.addAndGet(object.length);
      mine.complete(object.length);
      return new ChunkIndex.ChunkRef(name, chunk.length, object.length);
    } catch (IOException | RuntimeException e) {
      mine.completeExceptionally(e);
      throw e;
    }
  }

  /** Waits for the chunk's upload and lists it in the index; @return its image bytes */
  private static long index(ChunkIndex.Writer index, Future<ChunkIndex.ChunkRef> chunk) throws IOException {
    ChunkIndex.ChunkRef ref = await(chunk);
    index.chunk(ref);
    return ref.bytes();
  }

  private static ChunkIndex.ChunkRef await(Future<ChunkIndex.ChunkRef> chunk) throws IOException {
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
