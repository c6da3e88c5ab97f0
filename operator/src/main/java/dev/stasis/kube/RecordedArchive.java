package dev.stasis.kube;

import dev.stasis.api.Checkpoint;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.IOException;
import java.io.InputStream;
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
    return recorded.manifest().isChunked() ? indexMismatch(store, recorded.manifest().chunks) : Optional.empty();
  }

  private static Optional<String> indexMismatch(ObjectStore store, Manifest.Chunks chunks) throws IOException {
    byte[] index;
    try (InputStream in = store.open(chunks.indexKey)) {
      index = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, chunks.indexBytes + 1));
    } catch (ObjectNotFoundException e) {
      return Optional.of("the chunk index " + store.uri(chunks.indexKey) + " is missing");
    }
    String sha256 = Sha256.hexOf(index);
    if (index.length != chunks.indexBytes || !sha256.equalsIgnoreCase(chunks.indexSha256)) {
      return Optional.of("the chunk index " + store.uri(chunks.indexKey) + " is " + index.length + " bytes with sha256 "
          + sha256 + ", not the " + chunks.indexBytes + " bytes with sha256 " + chunks.indexSha256 + " its manifest"
          + " recorded");
    }
    return Optional.empty();
  }
}
