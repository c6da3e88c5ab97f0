package dev.stasis.operator.retention;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Finds the objects and unfinished uploads in a storage whose Checkpoint no longer exists (uploads
 * that outlived a Checkpoint force-deleted or deleted while it was taken, multipart uploads of an
 * agent that died while S3 was unreachable, archives whose deletion failed) and removes them, as it
 * does the probe objects of storage checks that failed halfway. It leaves alone other keys not laid
 * out by Stasis, archives kept on purpose
 * ({@link ArchiveLayout#RETAINED_MARKER_FILE_NAME}), and every checkpoint's objects until the newest
 * of them is older than the grace period.
 */
public final class StorageGarbageCollector {

  /**
   * What one collection removed: the checkpoints' key prefixes, their committed objects and bytes
   * and unfinished uploads, and leftover check probes.
   */
  public record Collected(List<String> prefixes, int objects, long bytes, int unfinishedUploads, int probes) {
    public boolean isEmpty() {
      return prefixes.isEmpty() && probes == 0;
    }
  }

  private StorageGarbageCollector() {}

  /**
   * @param checkpointUids the UIDs of all Checkpoints of the cluster; asked for after the objects
   *     were listed, so that no Checkpoint created in between can look missing
   */
  public static Collected collect(ObjectStore store, Supplier<Set<String>> checkpointUids, Duration gracePeriod,
      Instant now) throws IOException {
    List<StoredObject> objects = store.list("");
    Map<ArchiveLayout, List<StoredObject>> committed = byCheckpoint(objects);
    Map<ArchiveLayout, List<StoredObject>> unfinished = byCheckpoint(store.listUnfinished(""));
    Set<String> existing = checkpointUids.get();
    Instant settled = now.minus(gracePeriod);
    Set<ArchiveLayout> checkpoints = new LinkedHashSet<>(committed.keySet());
    checkpoints.addAll(unfinished.keySet());
    List<String> prefixes = new ArrayList<>();
    int count = 0;
    long bytes = 0;
    int uploads = 0;
    for (ArchiveLayout layout : checkpoints) {
      List<StoredObject> stored = committed.getOrDefault(layout, List.of());
      List<StoredObject> started = unfinished.getOrDefault(layout, List.of());
      boolean orphaned = !existing.contains(layout.checkpointUid())
          && stored.stream().noneMatch(o -> o.key().equals(layout.retainedMarkerKey()))
          && Stream.concat(stored.stream(), started.stream()).allMatch(o -> o.lastModified().isBefore(settled));
      if (orphaned) {
        store.deleteAll(layout.prefix());
        prefixes.add(layout.prefix());
        count += stored.size();
        bytes += stored.stream().mapToLong(StoredObject::sizeBytes).sum();
        uploads += started.size();
      }
    }
    int probes = 0;
    for (StoredObject probe : objects) {
      if (probe.key().startsWith(ObjectStore.CHECK_PROBE_PREFIX) && probe.lastModified().isBefore(settled)) {
        store.deleteAll(probe.key());
        probes++;
      }
    }
    return new Collected(prefixes, count, bytes, uploads, probes);
  }

  private static Map<ArchiveLayout, List<StoredObject>> byCheckpoint(List<StoredObject> objects) {
    Map<ArchiveLayout, List<StoredObject>> byCheckpoint = new LinkedHashMap<>();
    for (StoredObject object : objects) {
      ArchiveLayout.ofKey(object.key())
          .ifPresent(layout -> byCheckpoint.computeIfAbsent(layout, l -> new ArrayList<>()).add(object));
    }
    return byCheckpoint;
  }
}
