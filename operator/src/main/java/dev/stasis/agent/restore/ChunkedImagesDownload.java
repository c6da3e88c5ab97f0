package dev.stasis.agent.restore;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkLocation;
import dev.stasis.archive.dedup.ChunkLocations;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
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
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * Writes the memory images of a deduplicated checkpoint back into its images folder before CRIU
 * sees any of it: the chunk index, checked against the sha256 the manifest recorded (itself
 * checked against the Checkpoint's status), then read as a stream; each image's chunks taken
 * {@value #CHUNKS_PER_BATCH} at a time and fetched pack by pack ({@link PackReads}: one streamed
 * ranged GET per pack's needed span) on {@value #FETCH_THREADS} threads, each chunk opened and
 * checked against its name ({@link ChunkObjects}) before it is written at its offset in the image;
 * then each whole image against the size in the index (and, for a version-1 index, the sha256 it
 * recorded; version 2 records none, see {@link ChunkIndex}). A chunk's location in the index is a
 * hint: when its pack is gone (the collector repacked it), the chunk is found through the
 * namespace's verified pack indexes. Anything that does not match throws, naming the chunk or
 * image. {@code stasis inspect} reads a checkpoint's memory the same way.
 */
public final class ChunkedImagesDownload {
  /**
   * The restore's CPU is the fetch threads' (HTTP, HMAC) and the storage's on a node of a few cores;
   * more threads than that only wait on one another.
   */
  static final int FETCH_THREADS = 4;
  /** 512 MiB of image a batch: a pack's chunks in one batch are read by one request. */
  static final int CHUNKS_PER_BATCH = 4096;

  private final ObjectStore store;
  private final RecordedManifest recorded;
  private final String namespace;
  private final Manifest.Chunks chunks;
  private final ChunkKey key;
  private final AtomicLong fetchedBytes = new AtomicLong();
  private final AtomicInteger requests = new AtomicInteger();
  /** Built on the first hinted pack found missing: every verified pack index's chunks. */
  private ChunkLocations resolved;
  private List<StoredPackIndexes.Untrusted> untrusted = List.of();

  /** {@code key}: the namespace's chunk key the manifest's {@code chunks.keyId} names, as granted. */
  public ChunkedImagesDownload(ObjectStore store, RecordedManifest recorded, ChunkKey key) {
    this.store = store;
    this.recorded = recorded;
    this.namespace = recorded.identity().namespace();
    this.chunks = recorded.manifest().chunks;
    this.key = key;
  }

  /**
   * What was put together: the images, the chunks they are cut into, the distinct chunks' stored
   * bytes, and the bytes read from storage for them (more than those when a read passed over chunks
   * it did not need) by so many requests.
   */
  public record Written(int images, int chunks, int distinctChunks, long distinctStoredBytes, long fetchedBytes,
      int requests) {}

  /** A fetch thread's: the chunk objects of the namespace, and the buffer a stored chunk is read into. */
  private static final class Fetcher {
    final ChunkObjects objects;
    byte[] buffer = new byte[0];

    Fetcher(ChunkObjects objects) {
      this.objects = objects;
    }

    byte[] buffer(int bytes) {
      if (buffer.length < bytes) {
        buffer = new byte[bytes];
      }
      return buffer;
    }
  }

  /**
   * Fetches, checks and writes every chunked image into {@code imagesDir}; {@code fetched} is told
   * the image bytes written so far.
   */
  public Written writeInto(Path imagesDir, LongConsumer fetched) throws IOException, InterruptedException {
    return writeTo(new ImageTargets() {
      @Override
      public ImageTarget open(String fileName) throws IOException {
        try {
          // CREATE_NEW: an image the archive brought too is not silently overwritten
          return new ImageTarget(FileChannel.open(imagesDir.resolve(fileName), StandardOpenOption.CREATE_NEW,
              StandardOpenOption.WRITE, StandardOpenOption.READ), 0);
        } catch (FileAlreadyExistsException e) {
          throw new ArchiveIntegrityException("the archive holds " + fileName + " too, which the chunk index"
              + " lists: the checkpoint was altered");
        }
      }

      @Override
      public void close(ImageTarget target) throws IOException {
        target.channel().close();
      }
    }, fetched);
  }

  /** Where an image's bytes go: into {@code channel} from {@code offset}. */
  public record ImageTarget(FileChannel channel, long offset) {}

  /** Where each image goes, in the index's order; {@link #close} once the image is written (or the writing failed). */
  public interface ImageTargets {
    ImageTarget open(String fileName) throws IOException;

    void close(ImageTarget target) throws IOException;
  }

  /**
   * As {@link #writeInto}, each image written where {@code targets} says (a pod checkpoint's: at
   * its place in the tar being put together).
   */
  public Written writeTo(ImageTargets targets, LongConsumer fetched) throws IOException, InterruptedException {
    boolean encrypted = !Manifest.Encryption.NONE.algorithm.equals(chunks.encryption);
    if (encrypted && !ChunkCipher.ALGORITHM.equals(chunks.encryption)) {
      throw new ArchiveIntegrityException("the chunks are encrypted with " + chunks.encryption + ", which this agent"
          + " does not know (it knows none and " + ChunkCipher.ALGORITHM + "); upgrade the agent");
    }
    byte[] index = index();
    ExecutorService fetches = Executors.newFixedThreadPool(FETCH_THREADS, runnable -> {
      Thread thread = new Thread(runnable, "chunk-fetch");
      thread.setDaemon(true);
      return thread;
    });
    ThreadLocal<Fetcher> fetchers = ThreadLocal.withInitial(
        () -> new Fetcher(ChunkObjects.forNamespace(key, namespace, encrypted, true)));
    ImageWriter writer = new ImageWriter(targets, fetched, fetches, fetchers);
    try {
      ChunkIndex.read(new ByteArrayInputStream(index), writer);
    } catch (UncheckedInterrupt e) {
      throw e.getCause();
    } finally {
      fetches.shutdownNow();
      fetches.awaitTermination(1, TimeUnit.MINUTES);
      writer.closeOpen();
    }
    if (writer.totalBytes != chunks.imagesBytes) {
      throw new ArchiveIntegrityException("the chunk index lists " + writer.totalBytes + " bytes of images, the manifest "
          + chunks.imagesBytes);
    }
    return new Written(writer.images, writer.chunkCount, writer.distinct.size(),
        writer.distinct.values().stream().mapToLong(Integer::longValue).sum(), fetchedBytes.get(), requests.get());
  }

  /**
   * Writes the images as the index is read: a batch of an image's chunks planned into reads while
   * the batch before is fetched, at most two batches in flight.
   */
  private final class ImageWriter implements ChunkIndex.Visitor {
    final ImageTargets targets;
    final LongConsumer fetched;
    final ExecutorService fetches;
    final ThreadLocal<Fetcher> fetchers;
    final ArrayDeque<List<Future<Long>>> inFlight = new ArrayDeque<>();
    final Map<String, Integer> distinct = new HashMap<>();
    List<PackReads.Slot> batch = new ArrayList<>();
    ImageTarget out;
    /** Only for a version-1 index, which records each image's sha256. */
    boolean hashImages;
    long imageBytes;
    long written;
    long totalBytes;
    int images;
    int chunkCount;

    ImageWriter(ImageTargets targets, LongConsumer fetched, ExecutorService fetches, ThreadLocal<Fetcher> fetchers) {
      this.targets = targets;
      this.fetched = fetched;
      this.fetches = fetches;
      this.fetchers = fetchers;
    }

    @Override
    public void imageSha256s(boolean recorded) {
      hashImages = recorded;
    }

    @Override
    public void image(String fileName) throws IOException {
      out = targets.open(fileName);
      imageBytes = 0;
      written = 0;
    }

    @Override
    public void chunk(String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
      chunkCount++;
      distinct.put(chunk.name(), chunk.storedBytes());
      batch.add(new PackReads.Slot(chunk, imageBytes));
      imageBytes += chunk.bytes();
      if (batch.size() >= CHUNKS_PER_BATCH) {
        submitBatch(fileName);
      }
    }

    @Override
    public void imageEnd(String fileName, long sizeBytes, String sha256Hex) throws IOException {
      submitBatch(fileName);
      while (!inFlight.isEmpty()) {
        awaitBatch();
      }
      ImageTarget image = out;
      out = null;
      images++;
      if (written != sizeBytes) {
        targets.close(image);
        throw new ArchiveIntegrityException(fileName + " put together from its chunks is " + written
            + " bytes, the chunk index recorded " + sizeBytes);
      }
      String actual = hashImages ? sha256Of(image, sizeBytes) : null;
      targets.close(image);
      if (hashImages) {
        if (!actual.equals(sha256Hex)) {
          throw new ArchiveIntegrityException(fileName + " put together from its chunks has sha256 " + actual
              + ", the chunk index recorded " + sha256Hex);
        }
      }
    }

    private void submitBatch(String fileName) throws IOException {
      if (batch.isEmpty()) {
        return;
      }
      if (inFlight.size() >= 2) {
        awaitBatch();
      }
      ImageTarget image = out;
      List<Future<Long>> reads = new ArrayList<>();
      for (PackReads.Read read : PackReads.plan(batch)) {
        reads.add(fetches.submit(() -> fetch(fetchers.get(), image, fileName, read)));
      }
      inFlight.add(reads);
      batch = new ArrayList<>();
    }

    private void awaitBatch() throws IOException {
      for (Future<Long> read : inFlight.poll()) {
        long bytes = await(read);
        written += bytes;
        totalBytes += bytes;
        fetched.accept(totalBytes);
      }
    }

    void closeOpen() throws IOException {
      if (out != null) {
        targets.close(out);
      }
    }
  }

  /** The sha256 of the {@code bytes} an image target holds. */
  private static String sha256Of(ImageTarget image, long bytes) throws IOException {
    MessageDigest sha256 = Sha256.newDigest();
    ByteBuffer buffer = ByteBuffer.allocate(1 << 16);
    for (long at = 0; at < bytes; ) {
      buffer.clear().limit((int) Math.min(buffer.capacity(), bytes - at));
      int read = image.channel().read(buffer, image.offset() + at);
      if (read < 0) {
        throw new EOFException("the image ends before its " + bytes + " bytes");
      }
      sha256.update(buffer.flip());
      at += read;
    }
    return Sha256.hex(sha256.digest());
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

  /**
   * On a fetch thread: a read's chunks, streamed out of one ranged GET, each opened and checked
   * against its name before it is written at its offset in the image. Returns the bytes written.
   */
  private long fetch(Fetcher fetcher, ImageTarget image, String fileName, PackReads.Read read) throws IOException {
    if (read.packId() == null) {
      PackReads.Slot slot = read.slots().get(0);
      return write(image, ByteBuffer.wrap(fetchLoose(fetcher.objects, fileName, slot.chunk())), slot);
    }
    String packKey = ArchiveLayout.packKey(namespace, read.packId());
    InputStream in;
    requests.incrementAndGet();
    try {
      in = store.openRange(packKey, read.offset(), read.length());
    } catch (ObjectNotFoundException e) {
      long bytes = 0;
      for (PackReads.Slot slot : read.slots()) {
        bytes += write(image, ByteBuffer.wrap(fetchResolved(fetcher.objects, fileName, slot.chunk())), slot);
      }
      return bytes;
    }
    long bytes = 0;
    try (in) {
      long at = read.offset();
      PackReads.Slot previous = null;
      ByteBuffer opened = null;
      for (PackReads.Slot slot : read.slots()) {
        ChunkIndex.ChunkRef chunk = slot.chunk();
        byte[] buffer = fetcher.buffer;
        boolean sameObject = previous != null && slot.packOffset() == previous.packOffset()
            && chunk.storedBytes() == previous.chunk().storedBytes();
        if (!sameObject) {
          in.skipNBytes(slot.packOffset() - at);
          buffer = fetcher.buffer(chunk.storedBytes());
          int got = in.readNBytes(buffer, 0, chunk.storedBytes());
          fetchedBytes.addAndGet(slot.packOffset() - at + got);
          if (got != chunk.storedBytes()) {
            throw new ArchiveIntegrityException("chunk " + chunk.name() + " of " + fileName + " is not whole in "
                + store.uri(packKey) + ": the pack ends before byte " + slot.packEnd() + " where the chunk index puts"
                + " its end");
          }
          at = slot.packEnd();
        }
        if (!sameObject || !chunk.name().equals(previous.chunk().name()) || chunk.bytes() != previous.chunk().bytes()) {
          opened = fetcher.objects.openInPlace(chunk.name(), buffer, 0, chunk.storedBytes(), chunk.bytes());
        }
        bytes += write(image, opened.duplicate(), slot);
        previous = slot;
      }
    } catch (EOFException e) {
      throw new ArchiveIntegrityException(store.uri(packKey) + " ends before byte " + (read.offset() + read.length())
          + " where the chunk index puts a chunk of " + fileName);
    }
    return bytes;
  }

  /** Writes a checked chunk at its place in the image. */
  private static long write(ImageTarget image, ByteBuffer chunk, PackReads.Slot slot) throws IOException {
    long at = image.offset() + slot.imageOffset();
    int bytes = chunk.remaining();
    while (chunk.hasRemaining()) {
      at += image.channel().write(chunk, at);
    }
    return bytes;
  }

  private byte[] fetchLoose(ChunkObjects objects, String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
    String chunkKey = ArchiveLayout.chunkKey(namespace, chunk.name());
    byte[] object;
    requests.incrementAndGet();
    try (InputStream in = store.open(chunkKey)) {
      object = in.readNBytes(chunk.storedBytes() + 1);
    } catch (ObjectNotFoundException e) {
      return fetchResolved(objects, fileName, chunk);
    }
    fetchedBytes.addAndGet(object.length);
    if (object.length != chunk.storedBytes()) {
      throw new ArchiveIntegrityException("chunk " + chunk.name() + " of " + fileName + " is "
          + (object.length > chunk.storedBytes() ? "larger than" : object.length + " bytes, not") + " the "
          + chunk.storedBytes() + " bytes the chunk index lists");
    }
    return objects.open(chunk.name(), object, chunk.bytes());
  }

  /** A chunk whose hinted object is gone: wherever a verified pack index says it is now. */
  private byte[] fetchResolved(ChunkObjects objects, String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
    ChunkIndex.ChunkRef located = resolve(chunk);
    if (located == null) {
      throw new ChunkMissingException("chunk " + chunk.name() + " of " + fileName + " is missing: it is not at "
          + store.uri(chunk.location().loose() ? ArchiveLayout.chunkKey(namespace, chunk.name())
              : ArchiveLayout.packKey(namespace, chunk.location().packId()))
          + " where the chunk index says, and no pack index of the namespace lists it"
          + (untrusted.isEmpty() ? "" : " (pack indexes not trusted: " + untrusted + ")"));
    }
    String packKey = ArchiveLayout.packKey(namespace, located.location().packId());
    byte[] object;
    requests.incrementAndGet();
    try {
      object = store.readRange(packKey, located.location().offset(), located.storedBytes());
      fetchedBytes.addAndGet(object.length);
    } catch (ObjectNotFoundException e) {
      throw new ChunkMissingException("chunk " + chunk.name() + " of " + fileName + " is missing: its pack "
          + store.uri(packKey) + " was deleted while the restore read it");
    }
    return objects.open(chunk.name(), object, chunk.bytes());
  }

  /** Where the namespace's verified pack indexes say the chunk is now, or null. */
  private synchronized ChunkIndex.ChunkRef resolve(ChunkIndex.ChunkRef chunk) throws IOException {
    if (resolved == null) {
      ChunkLocations found = new ChunkLocations(1024);
      untrusted = StoredPackIndexes.forEach(store, namespace,
          PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace),
          index -> index.entries().forEach(entry -> found.add(entry.name(),
              ChunkLocation.inPack(index.packId(), entry.offset()), entry.storedBytes())));
      resolved = found;
    }
    return resolved.find(chunk.name(), chunk.bytes());
  }

  private static long await(Future<Long> read) throws IOException {
    try {
      return read.get();
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
