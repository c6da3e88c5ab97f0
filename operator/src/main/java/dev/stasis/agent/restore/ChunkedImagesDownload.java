package dev.stasis.agent.restore;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
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
 * checked against the Checkpoint's status), then read as a stream; each image's chunks fetched
 * {@value #FETCHES_IN_FLIGHT} requests at a time, neighbours in one pack in one ranged GET of up to
 * {@value #MAX_RANGE_BYTES} bytes, each chunk opened and checked against its name
 * ({@link ChunkObjects}) and written in order; then each whole image against the size in the index
 * (and, for a version-1 index, the sha256 it recorded; version 2 records none, see {@link ChunkIndex}). A chunk's location in the index is a hint: when its pack is gone (the collector
 * repacked it), the chunk is found through the namespace's verified pack indexes. Anything that
 * does not match throws, naming the chunk or image. {@code stasis inspect} reads a checkpoint's
 * memory the same way.
 */
public final class ChunkedImagesDownload {
  static final int FETCHES_IN_FLIGHT = 8;
  static final int MAX_RANGE_BYTES = 4 << 20;

  private final ObjectStore store;
  private final RecordedManifest recorded;
  private final String namespace;
  private final Manifest.Chunks chunks;
  private final ChunkKey key;
  /** Built on the first hinted pack found missing: every verified pack index's chunks. */
  private Map<String, Located> resolved;
  private List<StoredPackIndexes.Untrusted> untrusted = List.of();

  /** {@code key}: the namespace's chunk key the manifest's {@code chunks.keyId} names, as granted. */
  public ChunkedImagesDownload(ObjectStore store, RecordedManifest recorded, ChunkKey key) {
    this.store = store;
    this.recorded = recorded;
    this.namespace = recorded.identity().namespace();
    this.chunks = recorded.manifest().chunks;
    this.key = key;
  }

  /** What was put together: the images, the chunks they are cut into, and the distinct chunks' stored bytes. */
  public record Written(int images, int chunks, int distinctChunks, long distinctStoredBytes) {}

  /** Chunks fetched together: one loose chunk, or neighbours in one pack. */
  private record Run(String packId, long offset, List<ChunkIndex.ChunkRef> chunks, int storedBytes) {
    boolean canTake(ChunkIndex.ChunkRef chunk) {
      return packId != null && packId.equals(chunk.location().packId())
          && chunk.location().offset() == offset + storedBytes && storedBytes + chunk.storedBytes() <= MAX_RANGE_BYTES;
    }

    Run with(ChunkIndex.ChunkRef chunk) {
      List<ChunkIndex.ChunkRef> more = new ArrayList<>(chunks);
      more.add(chunk);
      return new Run(packId, offset, more, storedBytes + chunk.storedBytes());
    }

    static Run of(ChunkIndex.ChunkRef chunk) {
      return new Run(chunk.location().packId(), chunk.location().offset(), List.of(chunk), chunk.storedBytes());
    }
  }

  /** Where a pack index says a chunk is. */
  private record Located(String packId, long offset, int storedBytes) {}

  /**
   * Fetches, checks and writes every chunked image into {@code imagesDir}; {@code fetched} is told
   * the image bytes written so far.
   */
  public Written writeInto(Path imagesDir, LongConsumer fetched) throws IOException, InterruptedException {
    return writeTo(fileName -> {
      try {
        // CREATE_NEW: an image the archive brought too is not silently overwritten
        return Files.newOutputStream(imagesDir.resolve(fileName), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      } catch (FileAlreadyExistsException e) {
        throw new ArchiveIntegrityException("the archive holds " + fileName + " too, which the chunk index"
            + " lists: the checkpoint was altered");
      }
    }, fetched);
  }

  /** Where each image goes, in the index's order; the stream is closed once the image is written. */
  public interface ImageOutputs {
    OutputStream open(String fileName) throws IOException;
  }

  /**
   * As {@link #writeInto}, each image written to what {@code outputs} opens for it (a pod
   * checkpoint's: into the tar being put together).
   */
  public Written writeTo(ImageOutputs outputs, LongConsumer fetched) throws IOException, InterruptedException {
    boolean encrypted = !Manifest.Encryption.NONE.algorithm.equals(chunks.encryption);
    if (encrypted && !ChunkCipher.ALGORITHM.equals(chunks.encryption)) {
      throw new ArchiveIntegrityException("the chunks are encrypted with " + chunks.encryption + ", which this agent"
          + " does not know (it knows none and " + ChunkCipher.ALGORITHM + "); upgrade the agent");
    }
    byte[] index = index();
    ExecutorService fetches = Executors.newFixedThreadPool(FETCHES_IN_FLIGHT, runnable -> {
      Thread thread = new Thread(runnable, "chunk-fetch");
      thread.setDaemon(true);
      return thread;
    });
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(
        () -> ChunkObjects.forNamespace(key, namespace, encrypted, true));
    ImageWriter writer = new ImageWriter(outputs, fetched, fetches, objects);
    try {
      ChunkIndex.read(new ByteArrayInputStream(index), writer);
    } catch (UncheckedInterrupt e) {
      throw e.getCause();
    } finally {
      writer.closeOpen();
      fetches.shutdownNow();
      fetches.awaitTermination(1, TimeUnit.MINUTES);
    }
    if (writer.totalBytes != chunks.imagesBytes) {
      throw new ArchiveIntegrityException("the chunk index lists " + writer.totalBytes + " bytes of images, the manifest "
          + chunks.imagesBytes);
    }
    return new Written(writer.images, writer.chunkCount, writer.distinct.size(),
        writer.distinct.values().stream().mapToLong(Integer::longValue).sum());
  }

  /** Writes the images as the index is read: runs of chunks fetched ahead, written in order. */
  private final class ImageWriter implements ChunkIndex.Visitor {
    final ImageOutputs outputs;
    final LongConsumer fetched;
    final ExecutorService fetches;
    final ThreadLocal<ChunkObjects> objects;
    final ArrayDeque<Future<List<byte[]>>> window = new ArrayDeque<>();
    final Map<String, Integer> distinct = new HashMap<>();
    OutputStream out;
    /** Only for a version-1 index, which records each image's sha256. */
    boolean hashImages;
    MessageDigest sha256;
    long written;
    long totalBytes;
    int images;
    int chunkCount;
    Run run;

    ImageWriter(ImageOutputs outputs, LongConsumer fetched, ExecutorService fetches, ThreadLocal<ChunkObjects> objects) {
      this.outputs = outputs;
      this.fetched = fetched;
      this.fetches = fetches;
      this.objects = objects;
    }

    @Override
    public void imageSha256s(boolean recorded) {
      hashImages = recorded;
    }

    @Override
    public void image(String fileName) throws IOException {
      out = outputs.open(fileName);
      sha256 = hashImages ? Sha256.newDigest() : null;
      written = 0;
    }

    @Override
    public void chunk(String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
      chunkCount++;
      distinct.put(chunk.name(), chunk.storedBytes());
      if (run != null && run.canTake(chunk)) {
        run = run.with(chunk);
        return;
      }
      submitRun(fileName);
      run = Run.of(chunk);
    }

    @Override
    public void imageEnd(String fileName, long sizeBytes, String sha256Hex) throws IOException {
      submitRun(fileName);
      while (!window.isEmpty()) {
        writeNext();
      }
      out.close();
      out = null;
      images++;
      if (written != sizeBytes) {
        throw new ArchiveIntegrityException(fileName + " put together from its chunks is " + written
            + " bytes, the chunk index recorded " + sizeBytes);
      }
      if (sha256Hex != null) {
        String actual = Sha256.hex(sha256.digest());
        if (!actual.equals(sha256Hex)) {
          throw new ArchiveIntegrityException(fileName + " put together from its chunks has sha256 " + actual
              + ", the chunk index recorded " + sha256Hex);
        }
      }
    }

    private void submitRun(String fileName) throws IOException {
      if (run == null) {
        return;
      }
      Run submitted = run;
      run = null;
      window.add(fetches.submit(() -> fetch(objects.get(), fileName, submitted)));
      if (window.size() >= 2 * FETCHES_IN_FLIGHT) {
        writeNext();
      }
    }

    private void writeNext() throws IOException {
      for (byte[] chunk : await(window.poll())) {
        if (sha256 != null) {
          sha256.update(chunk);
        }
        out.write(chunk);
        written += chunk.length;
        totalBytes += chunk.length;
      }
      fetched.accept(totalBytes);
    }

    void closeOpen() throws IOException {
      if (out != null) {
        out.close();
      }
    }
  }

  /** The chunk index, checked against the manifest before a byte of it is parsed. */
  private byte[] index() throws IOException {
    try {
      return recorded.chunkIndex(store);
    } catch (ObjectNotFoundException e) {
      throw new ChunkMissingException("the chunk index " + store.uri(chunks.indexKey) + " is missing although the"
          + " checkpoint's manifest exists");
    }
  }

  /** On a fetch thread: a run's chunks, each opened and checked against its name. */
  private List<byte[]> fetch(ChunkObjects objects, String fileName, Run run) throws IOException {
    if (run.packId() == null) {
      ChunkIndex.ChunkRef chunk = run.chunks().get(0);
      return List.of(fetchLoose(objects, fileName, chunk));
    }
    byte[] range;
    try {
      range = store.readRange(ArchiveLayout.packKey(namespace, run.packId()), run.offset(), run.storedBytes());
    } catch (ObjectNotFoundException e) {
      List<byte[]> opened = new ArrayList<>();
      for (ChunkIndex.ChunkRef chunk : run.chunks()) {
        opened.add(fetchResolved(objects, fileName, chunk));
      }
      return opened;
    }
    List<byte[]> opened = new ArrayList<>(run.chunks().size());
    int at = 0;
    for (ChunkIndex.ChunkRef chunk : run.chunks()) {
      opened.add(objects.open(chunk.name(), range, at, chunk.storedBytes(), chunk.bytes()));
      at += chunk.storedBytes();
    }
    return opened;
  }

  private byte[] fetchLoose(ChunkObjects objects, String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
    String chunkKey = ArchiveLayout.chunkKey(namespace, chunk.name());
    byte[] object;
    try (InputStream in = store.open(chunkKey)) {
      object = in.readNBytes(chunk.storedBytes() + 1);
    } catch (ObjectNotFoundException e) {
      return fetchResolved(objects, fileName, chunk);
    }
    if (object.length != chunk.storedBytes()) {
      throw new ArchiveIntegrityException("chunk " + chunk.name() + " of " + fileName + " is "
          + (object.length > chunk.storedBytes() ? "larger than" : object.length + " bytes, not") + " the "
          + chunk.storedBytes() + " bytes the chunk index lists");
    }
    return objects.open(chunk.name(), object, chunk.bytes());
  }

  /** A chunk whose hinted object is gone: wherever a verified pack index says it is now. */
  private byte[] fetchResolved(ChunkObjects objects, String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
    Located located = resolve(chunk.name());
    if (located == null) {
      throw new ChunkMissingException("chunk " + chunk.name() + " of " + fileName + " is missing: it is not at "
          + store.uri(chunk.location().loose() ? ArchiveLayout.chunkKey(namespace, chunk.name())
              : ArchiveLayout.packKey(namespace, chunk.location().packId()))
          + " where the chunk index says, and no pack index of the namespace lists it"
          + (untrusted.isEmpty() ? "" : " (pack indexes not trusted: " + untrusted + ")"));
    }
    byte[] object;
    try {
      object = store.readRange(ArchiveLayout.packKey(namespace, located.packId()), located.offset(),
          located.storedBytes());
    } catch (ObjectNotFoundException e) {
      throw new ChunkMissingException("chunk " + chunk.name() + " of " + fileName + " is missing: its pack "
          + store.uri(ArchiveLayout.packKey(namespace, located.packId())) + " was deleted while the restore read it");
    }
    return objects.open(chunk.name(), object, chunk.bytes());
  }

  private synchronized Located resolve(String name) throws IOException {
    if (resolved == null) {
      Map<String, Located> found = new HashMap<>();
      untrusted = StoredPackIndexes.forEach(store, namespace,
          PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace),
          index -> index.entries().forEach(entry -> found.putIfAbsent(entry.name(),
              new Located(index.packId(), entry.offset(), entry.storedBytes()))));
      resolved = found;
    }
    return resolved.get(name);
  }

  private static List<byte[]> await(Future<List<byte[]>> run) throws IOException {
    try {
      return run.get();
    } catch (InterruptedException e) {
      throw new UncheckedInterrupt(e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("fetching a chunk failed: " + cause, cause);
    }
  }

  /** Carries an interrupt out of the index reader's visitor, which may throw only IOException. */
  private static final class UncheckedInterrupt extends RuntimeException {
    UncheckedInterrupt(InterruptedException cause) {
      super(cause);
    }

    @Override
    public synchronized InterruptedException getCause() {
      return (InterruptedException) super.getCause();
    }
  }

  /** A chunk the index lists is not in storage. */
  public static final class ChunkMissingException extends IOException {
    ChunkMissingException(String message) {
      super(message);
    }
  }
}
