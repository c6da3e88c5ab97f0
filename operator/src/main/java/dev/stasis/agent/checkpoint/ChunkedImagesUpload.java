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
import dev.stasis.kube.StoredPackIndexes;
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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * Stores the memory images of a deduplicated checkpoint (docs/dedup.md): each process's
 * {@code pages-<n>.img} is cut where its pagemap says memory runs start and at every 128 KiB of
 * address ({@link PagemapAlignedChunker}), each chunk named, compressed and (encrypted storage)
 * sealed on its own ({@link ChunkObjects}) on {@value #UPLOADS_IN_FLIGHT} threads, and only the
 * chunks the namespace did not hold when the checkpoint started are stored, in packs
 * ({@link PackedChunkStore}). The chunk index ({@link ChunkIndex}) follows them; the manifest,
 * written by the caller after the archive, makes the checkpoint complete.
 *
 * <p>The namespace's chunks are listed once, before CRIU runs, and what was listed is trusted: the
 * storage's chunk collection deletes no chunk while a checkpoint of the namespace is in flight, nor
 * one younger than its grace period. Nothing here deletes chunks: ones stored for a checkpoint that
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
  private final PackedChunkStore chunks;

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
    this.chunks = new PackedChunkStore(store, namespace, key, PackedChunkStore.PACK_BYTES);
  }

  /**
   * What was stored: the images left out of the archive, the manifest's {@code chunks}, the bytes
   * uploaded (new packs, their indexes and the chunk index), the chunks the images hold (each once),
   * how many were new, and the pack indexes that were not trusted (their chunks were stored again).
   */
  public record Stored(Set<String> images, Manifest.Chunks chunks, long newBytes, int distinctChunks, int uploadedChunks,
      List<StoredPackIndexes.Untrusted> untrustedPackIndexes) {}

  /** What the namespace stores, found before CRIU runs: one LIST of its loose chunks, one of its packs, the pack indexes. */
  public void listStored() throws IOException {
    chunks.list();
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
            window.add(uploads.submit(() -> chunks.store(objects.get(), chunk)));
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
      chunks.finish();
      byte[] indexObject = indexBytes.toByteArray();
      store.put(layout.chunkIndexKey(), indexObject);
      Manifest.Chunks described = new Manifest.Chunks();
      described.indexKey = layout.chunkIndexKey();
      described.indexSha256 = Sha256.hexOf(indexObject);
      described.indexBytes = (long) indexObject.length;
      described.codec = compress ? ArchiveCodec.ZSTD : ArchiveCodec.NONE;
      described.encryption = encrypt ? ChunkCipher.ALGORITHM : Manifest.Encryption.NONE.algorithm;
      described.keyId = key.keyId();
      described.imagesBytes = imagesBytes;
      return new Stored(Set.copyOf(images), described, chunks.newBytes() + indexObject.length, chunks.distinctChunks(),
          chunks.newChunks(), chunks.untrusted());
    } finally {
      uploads.shutdownNow();
      uploads.awaitTermination(1, TimeUnit.MINUTES);
      chunks.close();
    }
  }

  private ChunkObjects objects() {
    return ChunkObjects.forNamespace(key, namespace, encrypt, compress);
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
