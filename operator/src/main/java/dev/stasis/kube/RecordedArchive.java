package dev.stasis.kube;

import dev.stasis.api.Checkpoint;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.util.Optional;

/**
 * The archive a Checkpoint's status recorded while it was still Running: the agent records it
 * (with its manifest's sha256) once the archive and manifest are stored, before it ends a workload
 * (leaveRunning: false). Who finds such a record after the agent is gone (the next agent, or the
 * operator when the node is lost) finishes the checkpoint from it, once the storage is seen to
 * hold what was recorded.
 */
public final class RecordedArchive {
  private RecordedArchive() {}

  /** Whether the status holds a record of a stored archive of a checkpoint still Running. */
  public static boolean isRecorded(Checkpoint checkpoint) {
    return checkpoint.getStatus() != null && checkpoint.getStatus().archive != null;
  }

  /**
   * Why {@code store} does not hold the archive the checkpoint's status recorded; empty when it
   * does: its manifest is the recorded one ({@link RecordedManifest}: same sha256, naming this
   * checkpoint and the recorded archive) and the archive object has the recorded size; for a
   * deduplicated checkpoint, its chunk index is the one the manifest recorded too. Throws when the
   * storage cannot be read now.
   */
  public static Optional<String> mismatch(ObjectStore store, Checkpoint checkpoint) throws IOException {
    RecordedManifest recorded;
    try {
      recorded = RecordedManifest.read(store, checkpoint, null);
    } catch (StoredCheckpointException e) {
      if ("StorageUnavailable".equals(e.reason())) {
        throw new IOException(e.getMessage(), e);
      }
      return Optional.of(e.getMessage());
    }
    String key = recorded.archiveKey();
    long storedBytes = recorded.archive().storedBytes();
    Optional<Long> size = store.list(key).stream().filter(o -> o.key().equals(key)).map(StoredObject::sizeBytes)
        .findFirst();
    if (size.isEmpty() || size.get() != storedBytes) {
      return Optional.of("the archive " + store.uri(key) + " is "
          + size.map(n -> n + " bytes, not " + storedBytes).orElse("missing"));
    }
    if (recorded.manifest().isChunked()) {
      try {
        recorded.chunkIndex(store);
      } catch (ObjectNotFoundException e) {
        return Optional.of("the chunk index " + store.uri(recorded.manifest().chunks.indexKey) + " is missing");
      } catch (ArchiveIntegrityException e) {
        return Optional.of(e.getMessage());
      }
    }
    return Optional.empty();
  }
}
