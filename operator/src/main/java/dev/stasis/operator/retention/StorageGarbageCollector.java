package dev.stasis.operator.retention;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * Finds the objects and unfinished uploads in a storage whose Checkpoint no longer exists (uploads
 * that outlived a Checkpoint force-deleted or deleted while it was taken, multipart uploads of an
 * agent that died while S3 was unreachable, archives whose deletion failed) and removes them, as it
 * does the probe objects of storage checks that failed halfway. It leaves alone other keys not laid
 * out by Stasis, archives kept on purpose
 * ({@link ArchiveLayout#RETAINED_MARKER_FILE_NAME}), and every checkpoint's objects until the newest
 * of them is older than the grace period.
 *
 * <p>It reads the listing as it comes, one checkpoint's objects at a time (they are listed together),
 * so a bucket of any size is never held in memory; only the unfinished uploads, which are few, are.
 *
 * <p>Chunks of deduplicated checkpoints (packs {@code <namespace>/.packs/} and loose chunks
 * {@code <namespace>/.chunks/}) are collected by reference, one namespace at a time as the listing
 * reaches them, under that namespace's {@link ChunkSweepLock}: the mark ({@link ChunkMark}) reads
 * the chunk index of every manifest of the namespace; then its packs are collected
 * ({@link PackCollection}: dead ones deleted, mostly dead ones repacked), and the loose chunks the
 * listing shows that no index lists and that are older than the grace period are deleted. A
 * namespace whose lock is held off by Checkpoints in flight keeps its chunks and packs until a later
 * pass; one with a manifest, chunk index or pack index that cannot be trusted keeps them all and is
 * reported. Only one namespace's mark is in memory at a time.
 *
 * <p>The same pass sums up what the storage holds ({@link Usage}), without listing anything twice.
 *
 * <p>A storage shared by the Stasis of several clusters (same bucket and prefix) holds archives of
 * Checkpoints this cluster cannot know: each cluster marks the storage it uses
 * ({@value #CLUSTER_MARKERS}{@code <cluster id>}), and while another cluster's mark is there
 * nothing is collected.
 */
public final class StorageGarbageCollector {
  /** Under the storage's prefix: one object per cluster whose Stasis uses the storage. */
  public static final String CLUSTER_MARKERS = ".stasis-clusters/";

  /**
   * What one collection removed: the checkpoints' key prefixes, their committed objects and bytes
   * and unfinished uploads, leftover check probes, and unreferenced chunks; or, when other clusters
   * use the storage too, their marks, and nothing removed. With what the storage holds afterwards.
   */
  public record Collected(List<String> prefixes, int objects, long bytes, int unfinishedUploads, int probes,
      List<String> otherClusters, Chunks chunks, Usage usage) {
    public boolean isEmpty() {
      return prefixes.isEmpty() && probes == 0 && chunks.deleted() == 0 && chunks.abandonedUploads() == 0
          && chunks.packs().deleted() == 0 && chunks.packs().repacked() == 0;
    }
  }

  /**
   * The loose chunks one collection deleted (objects, bytes), the unfinished chunk and pack uploads
   * it removed (their writer died: untouched for longer than the grace period), what it did to
   * packs, and the namespaces whose chunks it left alone: {@code waited} for Checkpoints in flight
   * (namespace: their names), {@code stopped} by a manifest, chunk index or pack index that cannot
   * be trusted (namespace: what is wrong).
   */
  public record Chunks(int deleted, long deletedBytes, int abandonedUploads, Packs packs,
      Map<String, List<String>> waited,
      Map<String, String> stopped) {}

  /**
   * Packs deleted (dead, or without an index; an index without its pack counts as one too), packs
   * repacked into {@code written} new ones, and the bytes that freed (deleted minus written).
   */
  public record Packs(int deleted, int repacked, int written, long freedBytes) {
    static final Packs NONE = new Packs(0, 0, 0, 0);

    Packs plus(PackCollection.Result r) {
      return new Packs(deleted + r.deleted(), repacked + r.repacked(), written + r.written(),
          freedBytes + r.freedBytes());
    }
  }

  /**
   * What the storage holds once collected: {@code storedBytes} of packs and their indexes, loose
   * chunks and every checkpoint's objects (archives, manifests, chunk indexes), and
   * {@code referencedBytes}, the logical size of the checkpoints its manifests describe (archive
   * before compression, plus chunked memory images); their quotient is what deduplication (and
   * compression) save. {@code chunks}: the loose chunks kept plus the distinct chunks the kept packs
   * hold (one that two packs hold counts once).
   */
  public record Usage(long storedBytes, long referencedBytes, int manifests, long chunks) {}

  /** The lock of a namespace's chunks in this storage, for a sweep ({@link ChunkSweepLock#tryHold}). */
  @FunctionalInterface
  public interface ChunkLocks {
    ChunkSweepLock.Attempt tryHold(String namespace);
  }

  private StorageGarbageCollector() {}

  /**
   * Deletes a checkpoint's objects, its manifest first: the manifest is written last and removed
   * first, so no reader (the chunk mark above all) finds a manifest whose chunk index is already gone.
   */
  public static void deleteCheckpoint(ObjectStore store, ArchiveLayout layout) throws IOException {
    store.delete(List.of(layout.manifestKey()));
    store.deleteAll(layout.prefix());
  }

  /** Marks the storage as used by this cluster's Stasis, so that another cluster's collector leaves it alone. */
  public static void markUsedBy(ObjectStore store, String clusterId) throws IOException {
    store.put(CLUSTER_MARKERS + clusterId, ("used by the Stasis of the Kubernetes cluster whose kube-system namespace"
        + " has the UID " + clusterId + "; the garbage collectors of other clusters leave this storage alone while it"
        + " is here. Delete it once that cluster no longer uses the storage.\n").getBytes(StandardCharsets.UTF_8));
  }

  /**
   * @param clusterId this cluster's mark ({@link #markUsedBy})
   * @param checkpointExists whether the Checkpoint of a layout exists (its UID, in its namespace);
   *     asked only of checkpoints whose objects are all older than the grace period
   * @param chunkLocks asked for a namespace's lock before its chunks are marked and swept
   * @param chunkKeys the keys that authenticate pack indexes and name (and seal) the chunks in packs
   * @param maxUnusedPercent the unused bytes a namespace's packs may keep, in percent of the used ones
   *     ({@link PackCollection})
   */
  public static Collected collect(ObjectStore store, String clusterId, Predicate<ArchiveLayout> checkpointExists,
      ChunkLocks chunkLocks, ChunkKeys chunkKeys, Duration gracePeriod, int maxUnusedPercent, Instant now)
      throws IOException {
    List<String> otherClusters = store.list(CLUSTER_MARKERS).stream()
        .map(o -> o.key().substring(CLUSTER_MARKERS.length())).filter(id -> !id.equals(clusterId)).toList();
    if (!otherClusters.isEmpty()) {
      return new Collected(List.of(), 0, 0, 0, 0, otherClusters, new Chunks(0, 0, 0, Packs.NONE, Map.of(), Map.of()),
          null);
    }
    Instant settled = now.minus(gracePeriod);
    Map<ArchiveLayout, Stored> unfinished = new LinkedHashMap<>();
    // No checkpoint owns a chunk or a pack, so no checkpoint's deletion takes their unfinished uploads along: they
    // go with the namespace's sweep, under its lock (no Checkpoint of it in flight, so no writer alive).
    Map<String, List<String>> staleChunkUploads = new TreeMap<>();
    for (StoredObject upload : store.listUnfinished("")) {
      ArchiveLayout.ofKey(upload.key()).ifPresent(l -> unfinished.computeIfAbsent(l, Stored::new).addUnfinished(upload));
      ArchiveLayout.ofChunkKey(upload.key()).map(ArchiveLayout.StoredChunk::namespace)
          .or(() -> ArchiveLayout.ofPackKey(upload.key()).map(ArchiveLayout.StoredPackObject::namespace))
          .filter(namespace -> upload.lastModified().isBefore(settled))
          .ifPresent(namespace -> staleChunkUploads.computeIfAbsent(namespace, ns -> new ArrayList<>())
              .add(upload.key()));
    }
    Sweep sweep = new Sweep(store, checkpointExists, chunkLocks, chunkKeys, settled, maxUnusedPercent, unfinished,
        staleChunkUploads);
    try {
      store.forEach("", sweep);
      return sweep.finish();
    } finally {
      sweep.releaseChunkLock();
    }
  }

  /** One checkpoint's objects and unfinished uploads, summed up as they are listed. */
  private static final class Stored {
    final ArchiveLayout layout;
    int objects;
    long bytes;
    int unfinished;
    boolean retained;
    final List<String> manifests = new ArrayList<>();
    Instant newest = Instant.MIN;

    Stored(ArchiveLayout layout) {
      this.layout = layout;
    }

    void add(StoredObject object) {
      objects++;
      bytes += object.sizeBytes();
      retained |= object.key().equals(layout.retainedMarkerKey());
      if (isManifest(object.key())) {
        manifests.add(object.key());
      }
      newest = newest.isAfter(object.lastModified()) ? newest : object.lastModified();
    }

    /** The checkpoint's manifest, or a pod checkpoint's container's. */
    private boolean isManifest(String key) {
      return key.equals(layout.manifestKey()) || (key.startsWith(layout.prefix() + "containers/")
          && key.endsWith("/" + ArchiveLayout.MANIFEST_FILE_NAME)
          && key.indexOf('/', layout.prefix().length() + "containers/".length()) == key.lastIndexOf('/'));
    }

    void addUnfinished(StoredObject upload) {
      unfinished++;
      newest = newest.isAfter(upload.lastModified()) ? newest : upload.lastModified();
    }
  }

  /** Goes through the listing, deciding about each checkpoint once its objects have all passed. */
  private static final class Sweep implements ObjectStore.ObjectVisitor {
    final ObjectStore store;
    final Predicate<ArchiveLayout> checkpointExists;
    final ChunkLocks chunkLocks;
    final ChunkKeys chunkKeys;
    final Instant settled;
    final int maxUnusedPercent;
    /** Checkpoints with unfinished uploads, until their objects come (if any do). */
    final Map<ArchiveLayout, Stored> unfinished;
    Stored current;
    final List<String> prefixes = new ArrayList<>();
    int objects;
    long bytes;
    int uploads;
    int probes;
    /** The namespace whose chunks the listing is in, if it is in some. */
    NamespaceChunks chunks;
    int chunksDeleted;
    long chunkBytesDeleted;
    /** Unfinished chunk uploads older than the grace period, by namespace, until its sweep removes them. */
    final Map<String, List<String>> staleChunkUploads;
    int abandonedChunkUploads;
    final Map<String, List<String>> waited = new TreeMap<>();
    final Map<String, String> stopped = new TreeMap<>();
    /** Namespaces whose packs this pass has collected (a listing may come back to a namespace: directories). */
    final Set<String> packsCollected = new HashSet<>();
    Packs packs = Packs.NONE;
    long storedBytes;
    long referencedBytes;
    int manifests;
    long chunksKept;

    Sweep(ObjectStore store, Predicate<ArchiveLayout> checkpointExists, ChunkLocks chunkLocks, ChunkKeys chunkKeys,
        Instant settled, int maxUnusedPercent, Map<ArchiveLayout, Stored> unfinished,
        Map<String, List<String>> staleChunkUploads) {
      this.staleChunkUploads = staleChunkUploads;
      this.store = store;
      this.checkpointExists = checkpointExists;
      this.chunkLocks = chunkLocks;
      this.chunkKeys = chunkKeys;
      this.settled = settled;
      this.maxUnusedPercent = maxUnusedPercent;
      this.unfinished = unfinished;
    }

    @Override
    public void visit(StoredObject object) throws IOException {
      if (object.key().startsWith(ObjectStore.CHECK_PROBE_PREFIX)) {
        if (object.lastModified().isBefore(settled)) {
          store.deleteAll(object.key());
          probes++;
        }
        return;
      }
      var chunk = ArchiveLayout.ofChunkKey(object.key());
      if (chunk.isPresent()) {
        if (chunks == null || !chunks.namespace.equals(chunk.get().namespace())) {
          endChunks();
          chunks = startChunks(chunk.get().namespace());
        }
        chunks.visit(object, chunk.get().name());
        return;
      }
      var pack = ArchiveLayout.ofPackKey(object.key());
      if (pack.isPresent()) {
        String namespace = pack.get().namespace();
        if (chunks == null || !chunks.namespace.equals(namespace)) {
          endChunks();
          chunks = startChunks(namespace);
        }
        if (!packsCollected.contains(namespace)) {
          storedBytes += object.sizeBytes(); // kept: the namespace's packs could not be collected this time
        }
        return;
      }
      endChunks(); // the listing has left the namespace's chunks and packs
      var layout = ArchiveLayout.ofKey(object.key());
      if (layout.isEmpty()) {
        return; // not laid out by Stasis
      }
      if (current == null || !current.layout.equals(layout.get())) {
        decide(current);
        Stored started = unfinished.remove(layout.get());
        current = started != null ? started : new Stored(layout.get());
      }
      current.add(object);
    }

    Collected finish() throws IOException {
      endChunks();
      // namespaces with unfinished chunk uploads but no chunk the listing passed
      for (String namespace : List.copyOf(staleChunkUploads.keySet())) {
        ChunkSweepLock.Attempt attempt = chunkLocks.tryHold(namespace);
        if (attempt instanceof ChunkSweepLock.Held held) {
          try (held) {
            removeAbandonedUploads(namespace);
          }
        } else {
          waited.put(namespace, ((ChunkSweepLock.Busy) attempt).checkpoints());
        }
      }
      decide(current);
      for (Stored onlyUnfinished : unfinished.values()) {
        decide(onlyUnfinished);
      }
      return new Collected(prefixes, objects, bytes, uploads, probes, List.of(),
          new Chunks(chunksDeleted, chunkBytesDeleted, abandonedChunkUploads, packs, waited, stopped),
          new Usage(storedBytes, referencedBytes, manifests, chunksKept));
    }

    /**
     * Marks a namespace's chunks and collects its packs (once a pass) when its lock can be had now;
     * otherwise they are all kept this time.
     */
    private NamespaceChunks startChunks(String namespace) throws IOException {
      ChunkSweepLock.Attempt attempt = chunkLocks.tryHold(namespace);
      if (attempt instanceof ChunkSweepLock.Busy busy) {
        waited.put(namespace, busy.checkpoints());
        return new NamespaceChunks(namespace, null, null);
      }
      ChunkSweepLock.Held held = (ChunkSweepLock.Held) attempt;
      try {
        removeAbandonedUploads(namespace);
        ChunkMark mark = ChunkMark.of(store, namespace);
        if (packsCollected.add(namespace)) {
          PackCollection.Result result = PackCollection.collect(store, namespace, mark, chunkKeys, settled,
              maxUnusedPercent);
          packs = packs.plus(result);
          storedBytes += result.storedBytes();
          chunksKept += result.held().size();
        }
        return new NamespaceChunks(namespace, held, mark);
      } catch (ChunkMark.ChunkReferencesInvalid e) {
        held.close();
        packsCollected.remove(namespace); // what the listing shows of them is kept, and counted
        stopped.put(namespace, e.getMessage());
        return new NamespaceChunks(namespace, null, null);
      } catch (IOException | RuntimeException e) {
        held.close();
        throw e;
      }
    }

    /** With the namespace's lock held: its chunk uploads that were unfinished and stale when listed. */
    private void removeAbandonedUploads(String namespace) throws IOException {
      for (String key : staleChunkUploads.getOrDefault(namespace, List.of())) {
        abandonedChunkUploads += store.deleteUnfinished(key, settled);
      }
      staleChunkUploads.remove(namespace);
    }

    private void endChunks() throws IOException {
      if (chunks != null) {
        NamespaceChunks ended = chunks;
        chunks = null;
        try {
          ended.deleteDoomed();
        } finally {
          ended.release();
        }
      }
    }

    /** After a failure: the lock goes, whatever was not deleted stays. */
    void releaseChunkLock() {
      if (chunks != null) {
        chunks.release();
      }
    }

    /** A checkpoint's objects go, unless it exists, is retained or is too recent; what stays is counted. */
    private void decide(Stored stored) throws IOException {
      if (stored == null) {
        return;
      }
      if (stored.retained || !stored.newest.isBefore(settled) || checkpointExists.test(stored.layout)) {
        storedBytes += stored.bytes;
        for (String manifestKey : stored.manifests) {
          referencedBytes += logicalBytes(manifestKey);
          manifests++;
        }
        return;
      }
      deleteCheckpoint(store, stored.layout);
      prefixes.add(stored.layout.prefix());
      objects += stored.objects;
      bytes += stored.bytes;
      uploads += stored.unfinished;
    }

    /** What a manifest describes, before compression; 0 for one that cannot be read (it refers to nothing usable). */
    private long logicalBytes(String manifestKey) throws IOException {
      Manifest manifest;
      try {
        manifest = Manifest.fromJson(store.read(manifestKey));
      } catch (ObjectNotFoundException | ManifestException e) {
        return 0;
      }
      long archive = manifest.archive != null && manifest.archive.sizeBytes != null ? manifest.archive.sizeBytes : 0;
      long images = manifest.isChunked() ? manifest.chunks.imagesBytes : 0;
      return archive + images;
    }

    /**
     * One namespace's chunks as the listing passes them: with its lock held and its mark, the
     * unmarked ones older than the grace period are deleted, in batches; without, all are kept.
     */
    private final class NamespaceChunks {
      static final int DELETE_BATCH = 1000;
      final String namespace;
      final ChunkSweepLock.Held held;
      final ChunkMark mark;
      final List<String> doomed = new ArrayList<>();

      NamespaceChunks(String namespace, ChunkSweepLock.Held held, ChunkMark mark) {
        this.namespace = namespace;
        this.held = held;
        this.mark = mark;
      }

      void visit(StoredObject chunk, String name) throws IOException {
        if (mark == null || mark.contains(name) || !chunk.lastModified().isBefore(settled)) {
          storedBytes += chunk.sizeBytes();
          chunksKept++;
          return;
        }
        doomed.add(chunk.key());
        chunksDeleted++;
        chunkBytesDeleted += chunk.sizeBytes();
        if (doomed.size() >= DELETE_BATCH) {
          deleteDoomed();
        }
      }

      void deleteDoomed() throws IOException {
        if (!doomed.isEmpty()) {
          store.delete(doomed);
          doomed.clear();
        }
      }

      void release() {
        if (held != null) {
          held.close();
        }
      }
    }
  }
}
