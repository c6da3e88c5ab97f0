package dev.stasis.kube;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.util.Objects;
import java.util.Optional;

/**
 * The archive a Checkpoint's status recorded while it was still Running: the agent records it
 * once the archive and manifest are stored, before it ends a workload (leaveRunning: false). Who
 * finds such a record after the agent is gone (the next agent, or the operator when the node is
 * lost) finishes the checkpoint from it, once the storage is seen to hold what was recorded.
 */
public final class RecordedArchive {
  private RecordedArchive() {}

  /** Whether the status holds a record of a stored archive of a checkpoint still Running. */
  public static boolean isRecorded(Checkpoint checkpoint) {
    return checkpoint.getStatus() != null && checkpoint.getStatus().archive != null;
  }

  /**
   * Why {@code store} does not hold the archive the checkpoint's status recorded; empty when it
   * does: its manifest names this checkpoint and the recorded archive, digest and sizes, and the
   * archive object has the recorded size. Throws when the storage cannot be read now.
   */
  public static Optional<String> mismatch(ObjectStore store, Checkpoint checkpoint) throws IOException {
    ArchiveStatus recorded = checkpoint.getStatus().archive;
    var meta = checkpoint.getMetadata();
    String manifestKey = new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid()).manifestKey();
    Manifest manifest;
    try {
      manifest = Manifest.fromJson(store.read(manifestKey));
    } catch (ObjectNotFoundException e) {
      return Optional.of("its manifest " + store.uri(manifestKey) + " is missing");
    } catch (ManifestException e) {
      return Optional.of("its manifest is unreadable (" + e.getMessage() + ")");
    }
    if (manifest.source == null || manifest.archive == null || !meta.getUid().equals(manifest.source.checkpointUid)
        || !Objects.equals(recorded.uri, store.uri(manifest.archive.key))
        || !Objects.equals(recorded.sha256, manifest.archive.sha256)
        || !Objects.equals(recorded.storedBytes, manifest.archive.storedBytes)) {
      return Optional.of("its manifest names another archive than the one recorded (" + recorded.uri + ", sha256 "
          + recorded.sha256 + ")");
    }
    String key = manifest.archive.key;
    Optional<Long> size = store.list(key).stream().filter(o -> o.key().equals(key)).map(StoredObject::sizeBytes)
        .findFirst();
    if (size.isEmpty() || !size.get().equals(recorded.storedBytes)) {
      return Optional.of("the archive " + recorded.uri + " is "
          + size.map(n -> n + " bytes, not " + recorded.storedBytes).orElse("missing"));
    }
    return Optional.empty();
  }
}
