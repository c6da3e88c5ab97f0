package dev.stasis.operator.retention;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
   * and unfinished uploads, and leftover check probes; or, when other clusters use the storage too,
   * their marks, and nothing removed.
   */
  public record Collected(List<String> prefixes, int objects, long bytes, int unfinishedUploads, int probes,
      List<String> otherClusters) {
    public boolean isEmpty() {
      return prefixes.isEmpty() && probes == 0;
    }
  }

  private StorageGarbageCollector() {}

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
   */
  public static Collected collect(ObjectStore store, String clusterId, Predicate<ArchiveLayout> checkpointExists,
      Duration gracePeriod, Instant now) throws IOException {
    List<String> otherClusters = store.list(CLUSTER_MARKERS).stream()
        .map(o -> o.key().substring(CLUSTER_MARKERS.length())).filter(id -> !id.equals(clusterId)).toList();
    if (!otherClusters.isEmpty()) {
      return new Collected(List.of(), 0, 0, 0, 0, otherClusters);
    }
    Map<ArchiveLayout, Stored> unfinished = new LinkedHashMap<>();
    for (StoredObject upload : store.listUnfinished("")) {
      ArchiveLayout.ofKey(upload.key()).ifPresent(l -> unfinished.computeIfAbsent(l, Stored::new).addUnfinished(upload));
    }
    Sweep sweep = new Sweep(store, checkpointExists, now.minus(gracePeriod), unfinished);
    store.forEach("", sweep);
    return sweep.finish();
  }

  /** One checkpoint's objects and unfinished uploads, summed up as they are listed. */
  private static final class Stored {
    final ArchiveLayout layout;
    int objects;
    long bytes;
    int unfinished;
    boolean retained;
    Instant newest = Instant.MIN;

    Stored(ArchiveLayout layout) {
      this.layout = layout;
    }

    void add(StoredObject object) {
      objects++;
      bytes += object.sizeBytes();
      retained |= object.key().equals(layout.retainedMarkerKey());
      newest = newest.isAfter(object.lastModified()) ? newest : object.lastModified();
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
    final Instant settled;
    /** Checkpoints with unfinished uploads, until their objects come (if any do). */
    final Map<ArchiveLayout, Stored> unfinished;
    Stored current;
    final List<String> prefixes = new ArrayList<>();
    int objects;
    long bytes;
    int uploads;
    int probes;

    Sweep(ObjectStore store, Predicate<ArchiveLayout> checkpointExists, Instant settled,
        Map<ArchiveLayout, Stored> unfinished) {
      this.store = store;
      this.checkpointExists = checkpointExists;
      this.settled = settled;
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
      decide(current);
      for (Stored onlyUnfinished : unfinished.values()) {
        decide(onlyUnfinished);
      }
      return new Collected(prefixes, objects, bytes, uploads, probes, List.of());
    }

    private void decide(Stored stored) throws IOException {
      if (stored == null || stored.retained || !stored.newest.isBefore(settled)
          || checkpointExists.test(stored.layout)) {
        return;
      }
      store.deleteAll(stored.layout.prefix());
      prefixes.add(stored.layout.prefix());
      objects += stored.objects;
      bytes += stored.bytes;
      uploads += stored.unfinished;
    }
  }
}
