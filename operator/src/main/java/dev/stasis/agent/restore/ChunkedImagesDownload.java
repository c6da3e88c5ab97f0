package dev.stasis.agent.restore;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * Writes the memory images of a deduplicated checkpoint back into its images folder before CRIU
 * sees any of it: the chunk index, checked against the sha256 the manifest recorded (itself
 * checked against the Checkpoint's status); then each image's chunks, {@value #FETCHES_IN_FLIGHT}
 * fetched at a time, each opened and checked against its name ({@link ChunkObjects}), written in
 * order; then each whole image against the size and sha256 in the index. Anything that does not
 * match throws, naming the chunk or image. {@code stasis inspect} reads a checkpoint's memory the same way.
 */
public final class ChunkedImagesDownload {
  static final int FETCHES_IN_FLIGHT = 16;
  private static final int WINDOW = 4 * FETCHES_IN_FLIGHT;

  private final ObjectStore store;
  private final RecordedManifest recorded;
  private final String namespace;
  private final Manifest.Chunks chunks;
  private final ChunkKey key;

  /** {@code key}: the namespace's chunk key the manifest's {@code chunks.keyId} names, as granted. */
  public ChunkedImagesDownload(ObjectStore store, RecordedManifest recorded, ChunkKey key) {
    this.store = store;
    this.recorded = recorded;
    this.namespace = recorded.identity().namespace();
    this.chunks = recorded.manifest().chunks;
    this.key = key;
  }

  /** One image as the index lists it. */
  private record Image(String fileName, List<ChunkIndex.ChunkRef> chunks, long sizeBytes, String sha256) {}

  /** What was put together: the images, the chunks they are cut into, and the distinct chunks' stored bytes. */
  public record Written(int images, int chunks, int distinctChunks, long distinctStoredBytes) {}

  /**
   * Fetches, checks and writes every chunked image into {@code imagesDir}; {@code fetched} is told
   * the image bytes written so far.
   */
  public Written writeInto(Path imagesDir, LongConsumer fetched) throws IOException, InterruptedException {
    boolean encrypted = !Manifest.Encryption.NONE.algorithm.equals(chunks.encryption);
    if (encrypted && !ChunkCipher.ALGORITHM.equals(chunks.encryption)) {
      throw new ArchiveIntegrityException("the chunks are encrypted with " + chunks.encryption + ", which this agent"
          + " does not know (it knows none and " + ChunkCipher.ALGORITHM + "); upgrade the agent");
    }
    List<Image> images = index();
    ExecutorService fetches = Executors.newFixedThreadPool(FETCHES_IN_FLIGHT, runnable -> {
      Thread thread = new Thread(runnable, "chunk-fetch");
      thread.setDaemon(true);
      return thread;
    });
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(
        () -> ChunkObjects.forNamespace(key, namespace, encrypted, true));
    long writtenBytes = 0;
    try {
      for (Image image : images) {
        Path file = imagesDir.resolve(image.fileName());
        MessageDigest sha256 = Sha256.newDigest();
        long written = 0;
        // CREATE_NEW: an image the archive brought too is not silently overwritten
        try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          ArrayDeque<Future<byte[]>> window = new ArrayDeque<>();
          int next = 0;
          while (next < image.chunks().size() || !window.isEmpty()) {
            while (next < image.chunks().size() && window.size() < WINDOW) {
              ChunkIndex.ChunkRef chunk = image.chunks().get(next++);
              window.add(fetches.submit(() -> fetch(objects.get(), image, chunk)));
            }
            byte[] chunk = await(window.poll());
            sha256.update(chunk);
            out.write(chunk);
            written += chunk.length;
            writtenBytes += chunk.length;
            fetched.accept(writtenBytes);
          }
        } catch (java.nio.file.FileAlreadyExistsException e) {
          throw new ArchiveIntegrityException("the archive holds " + image.fileName() + " too, which the chunk index"
              + " lists: the checkpoint was altered");
        }
        String actual = Sha256.hex(sha256.digest());
        if (written != image.sizeBytes() || !actual.equals(image.sha256())) {
          throw new ArchiveIntegrityException(image.fileName() + " put together from its chunks is " + written
              + " bytes with sha256 " + actual + ", the chunk index recorded " + image.sizeBytes() + " bytes with sha256 "
              + image.sha256());
        }
      }
      Map<String, Integer> distinct = new HashMap<>();
      images.forEach(image -> image.chunks().forEach(c -> distinct.put(c.name(), c.storedBytes())));
      return new Written(images.size(), images.stream().mapToInt(i -> i.chunks().size()).sum(), distinct.size(),
          distinct.values().stream().mapToLong(Integer::longValue).sum());
    } finally {
      fetches.shutdownNow();
      fetches.awaitTermination(1, TimeUnit.MINUTES);
    }
  }

  /** The chunk index, checked against the manifest before a byte of it is parsed. */
  private List<Image> index() throws IOException {
    byte[] bytes;
    try {
      bytes = recorded.chunkIndex(store);
    } catch (ObjectNotFoundException e) {
      throw new ChunkMissingException("the chunk index " + store.uri(chunks.indexKey) + " is missing although the"
          + " checkpoint's manifest exists");
    }
    List<Image> images = new ArrayList<>();
    ChunkIndex.read(new ByteArrayInputStream(bytes), new ChunkIndex.Visitor() {
      private List<ChunkIndex.ChunkRef> open;

      @Override
      public void image(String fileName) {
        open = new ArrayList<>();
      }

      @Override
      public void chunk(String fileName, ChunkIndex.ChunkRef chunk) {
        open.add(chunk);
      }

      @Override
      public void imageEnd(String fileName, long sizeBytes, String sha256) {
        images.add(new Image(fileName, open, sizeBytes, sha256));
      }
    });
    long total = images.stream().mapToLong(Image::sizeBytes).sum();
    if (total != chunks.imagesBytes) {
      throw new ArchiveIntegrityException("the chunk index lists " + total + " bytes of images, the manifest "
          + chunks.imagesBytes);
    }
    return images;
  }

  private byte[] fetch(ChunkObjects objects, Image image, ChunkIndex.ChunkRef chunk) throws IOException {
    String chunkKey = ArchiveLayout.chunkKey(namespace, chunk.name());
    byte[] object;
    try (InputStream in = store.open(chunkKey)) {
      object = in.readNBytes(chunk.storedBytes() + 1);
    } catch (ObjectNotFoundException e) {
      throw new ChunkMissingException("chunk " + chunk.name() + " of " + image.fileName() + " is missing from "
          + store.uri(chunkKey) + ": it was deleted although this checkpoint's manifest refers to it");
    }
    if (object.length != chunk.storedBytes()) {
      throw new ArchiveIntegrityException("chunk " + chunk.name() + " of " + image.fileName() + " is "
          + (object.length > chunk.storedBytes() ? "larger than" : object.length + " bytes, not") + " the "
          + chunk.storedBytes() + " bytes the chunk index lists");
    }
    return objects.open(chunk.name(), object, chunk.bytes());
  }

  private static byte[] await(Future<byte[]> chunk) throws IOException, InterruptedException {
    try {
      return chunk.get();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("fetching a chunk failed: " + cause, cause);
    }
  }


  /** A chunk the index lists is not in storage. */
  public static final class ChunkMissingException extends IOException {
    ChunkMissingException(String message) {
      super(message);
    }
  }
}
