package dev.stasis.agent.checkpoint;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkLocation;
import dev.stasis.archive.dedup.ChunkLocations;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Stores one checkpoint's chunks in its namespace (pack-design.md): what the namespace already holds
 * is found once, at the start (one LIST of the loose chunks of before packs, one LIST of the packs,
 * and every pack index of the current chunk key read and verified); a chunk it lacks is appended to
 * an open pack, and a full pack is PUT ({@value #PACKS_IN_FLIGHT} at a time) followed by its index,
 * so an index never names a missing pack. A chunk that two threads bring at once is stored once.
 *
 * <p>A pack index that cannot be trusted (altered, another pack's, its pack missing or of another
 * length) is not used: its chunks count as absent and are stored again, and {@link #untrusted} names
 * it for a Warning. Nothing here deletes: packs of a checkpoint that then fails are referred to by no
 * manifest, and the storage's collector removes them after its grace period.
 */
final class PackedChunkStore {
  static final int PACK_BYTES = 16 << 20;
  static final int PACKS_IN_FLIGHT = 3;
  private static final HexFormat HEX = HexFormat.of();

  private final ObjectStore store;
  private final String namespace;
  private final PackIndex.Key indexKey;
  private final int packBytes;
  private final ExecutorService puts;
  private final Semaphore putSlots = new Semaphore(PACKS_IN_FLIGHT);
  private final List<Future<?>> packs = new ArrayList<>();
  private final AtomicLong newBytes = new AtomicLong();
  private final List<StoredPackIndexes.Untrusted> untrusted = new ArrayList<>();
  private ChunkLocations locations;
  private OpenPack open;
  private int newChunks;
  private volatile IOException failed;

  PackedChunkStore(ObjectStore store, String namespace, ChunkKey key, int packBytes) {
    this.store = store;
    this.namespace = namespace;
    this.indexKey = PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace);
    this.packBytes = packBytes;
    this.puts = Executors.newFixedThreadPool(PACKS_IN_FLIGHT, runnable -> {
      Thread thread = new Thread(runnable, "pack-upload-" + namespace);
      thread.setDaemon(true);
      return thread;
    });
  }

  /** The pack being filled: its id, its bytes so far, and what it holds. */
  private static final class OpenPack {
    final String packId = HEX.formatHex(randomId());
    final byte[] bytes;
    int length;

    OpenPack(int capacity) {
      bytes = new byte[capacity];
    }

    final List<PackIndex.Entry> entries = new ArrayList<>();

    boolean fits(int objectBytes) {
      return length + objectBytes <= bytes.length;
    }
  }

  private static byte[] randomId() {
    byte[] id = new byte[16];
    ThreadLocalRandom.current().nextBytes(id);
    return id;
  }

  /** A chunk stored as an object of its own, as checkpoints did before packs. */
  private record LooseChunk(String name, int storedBytes) {}

  /** Finds what the namespace already stores: loose chunks and the chunks of trusted pack indexes. */
  synchronized void list() throws IOException {
    List<LooseChunk> loose = new ArrayList<>();
    store.forEach(ArchiveLayout.chunkPrefix(namespace), object -> ArchiveLayout.ofChunkKey(object.key())
        .filter(chunk -> chunk.namespace().equals(namespace) && object.sizeBytes() > 0
            && object.sizeBytes() <= Integer.MAX_VALUE)
        .ifPresent(chunk -> loose.add(new LooseChunk(chunk.name(), (int) object.sizeBytes()))));
    List<PackIndex> indexes = new ArrayList<>();
    untrusted.addAll(StoredPackIndexes.forEach(store, namespace, indexKey, indexes::add));
    locations = new ChunkLocations(loose.size() + indexes.stream().mapToInt(i -> i.entries().size()).sum());
    for (LooseChunk chunk : loose) {
      locations.add(chunk.name(), ChunkLocation.LOOSE, chunk.storedBytes());
    }
    for (PackIndex index : indexes) {
      for (PackIndex.Entry entry : index.entries()) {
        locations.add(entry.name(), ChunkLocation.inPack(index.packId(), entry.offset()), entry.storedBytes());
      }
    }
  }

  /** The pack indexes {@link #list} did not trust, for a Warning each. */
  synchronized List<StoredPackIndexes.Untrusted> untrusted() {
    return List.copyOf(untrusted);
  }

  /**
   * On one of the caller's threads: names {@code chunk} and, unless the namespace has it, makes its
   * stored object (compressed, sealed) and appends it to the open pack; where the index finds it.
   */
  ChunkIndex.ChunkRef store(ChunkObjects objects, byte[] chunk) throws IOException, InterruptedException {
    String name = objects.name(chunk, 0, chunk.length);
    synchronized (this) {
      ChunkIndex.ChunkRef known = locations.refer(name, chunk.length);
      if (known != null) {
        return known;
      }
    }
    byte[] object = objects.object(name, chunk, 0, chunk.length);
    synchronized (this) {
      requireNoFailure();
      ChunkIndex.ChunkRef known = locations.refer(name, chunk.length);
      if (known != null) {
        return known; // another thread stored it meanwhile
      }
      if (open != null && !open.fits(object.length)) {
        send();
      }
      if (open == null) {
        open = new OpenPack(Math.max(packBytes, object.length));
      }
      ChunkLocation location = ChunkLocation.inPack(open.packId, open.length);
      System.arraycopy(object, 0, open.bytes, open.length, object.length);
      open.entries.add(new PackIndex.Entry(name, open.length, object.length, chunk.length));
      open.length += object.length;
      locations.add(name, location, object.length);
      newChunks++;
      return locations.refer(name, chunk.length);
    }
  }

  /** PUTs the open pack and waits until every pack and its index is stored; throws if one was not. */
  void finish() throws IOException, InterruptedException {
    synchronized (this) {
      requireNoFailure();
      if (open != null) {
        send();
      }
    }
    List<Future<?>> sent;
    synchronized (this) {
      sent = List.copyOf(packs);
    }
    for (Future<?> pack : sent) {
      try {
        pack.get();
      } catch (java.util.concurrent.ExecutionException e) {
        // the failure is in `failed`
      }
    }
    requireNoFailure();
  }

  /** Stops pack uploads still running (the checkpoint failed). */
  void close() throws InterruptedException {
    puts.shutdownNow();
    puts.awaitTermination(1, TimeUnit.MINUTES);
  }

  /** Bytes this checkpoint added: its packs and their indexes. */
  long newBytes() {
    return newBytes.get();
  }

  synchronized int distinctChunks() {
    return locations.referenced();
  }

  synchronized int newChunks() {
    return newChunks;
  }

  /** Under the lock: hands the open pack to an upload thread, waiting while {@value #PACKS_IN_FLIGHT} are out. */
  private void send() throws InterruptedException {
    putSlots.acquire();
    // A copy of exactly its length, so the open buffer is not held while the PUT runs.
    byte[] content = open.length == open.bytes.length ? open.bytes : Arrays.copyOf(open.bytes, open.length);
    String packId = open.packId;
    byte[] index = new PackIndex(indexKey.keyId(), packId, open.entries).encode(indexKey);
    open = null;
    packs.add(puts.submit(() -> {
      try {
        store.put(ArchiveLayout.packKey(namespace, packId), content);
        store.put(ArchiveLayout.packIndexKey(namespace, packId), index);
        newBytes.addAndGet(content.length + index.length);
      } catch (IOException e) {
        failed = new IOException("storing pack " + store.uri(ArchiveLayout.packKey(namespace, packId))
            + " failed: " + e.getMessage(), e);
      } catch (RuntimeException e) {
        failed = new IOException("storing pack " + packId + " failed: " + e, e);
      } finally {
        putSlots.release();
      }
    }));
  }

  private void requireNoFailure() throws IOException {
    IOException failure = failed;
    if (failure != null) {
      throw failure;
    }
    if (Thread.currentThread().isInterrupted()) {
      throw new InterruptedIOException("storing the chunks was interrupted");
    }
  }
}
