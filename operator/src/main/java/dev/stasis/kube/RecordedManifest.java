package dev.stasis.kube;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A checkpoint's manifest read back from storage and trusted only as far as the Checkpoint's status
 * (in etcd, out of reach of whoever can write the storage) vouches for it: its bytes hash to the
 * recorded {@code manifestSha256}, it names its own checkpoint, and the archive it describes is the
 * recorded one. Where the archive is and what its bytes must be come from the status and the
 * layout, never from the manifest alone. Every reader (placement, pod creation, the agents'
 * restores) reads manifests through this.
 *
 * @param archiveKey the archive's object key as the layout derives it
 * @param identity what an encrypted archive is bound to
 * @param archive the stored archive's sha256 and size, and its size before compression, as recorded
 */
public record RecordedManifest(Manifest manifest, String archiveKey, ArchiveIdentity identity, ArchiveSummary archive) {
  /** Far above any manifest (a pod spec, a few thousand paths); a larger object is not read at all. */
  public static final int MAX_MANIFEST_BYTES = 4 << 20;

  private static final String ELSEWHERE = ": restore another checkpoint or take a new checkpoint";

  /** Where a Checkpoint's archives and manifests are in its storage: derived from its identity, never read from the storage. */
  public static ArchiveLayout layout(Checkpoint checkpoint) {
    var meta = checkpoint.getMetadata();
    return new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid());
  }

  /**
   * Reads the manifest of a Completed checkpoint.
   *
   * @param container the container of a pod checkpoint; null for a process checkpoint
   */
  public static RecordedManifest read(ObjectStore store, Checkpoint checkpoint, String container)
      throws StoredCheckpointException {
    var meta = checkpoint.getMetadata();
    String name = meta.getName();
    ArchiveStatus recorded = recordedArchive(checkpoint, container);
    String what = container == null ? "Checkpoint '" + name + "'" : "container " + container + " of Checkpoint '" + name + "'";
    if (recorded == null || recorded.sha256 == null || recorded.storedBytes == null || recorded.sizeBytes == null) {
      throw new StoredCheckpointException("CheckpointNotCompleted", what + " has no archive recorded in its status"
          + ELSEWHERE);
    }
    if (recorded.manifestSha256 == null) {
      throw new StoredCheckpointException("ManifestUnverified", what + " was stored by a Stasis agent that did not"
          + " record its manifest's sha256 in the Checkpoint's status, so its manifest cannot be told apart from one"
          + " rewritten in the storage and is not used" + ELSEWHERE);
    }
    ArchiveLayout layout = layout(checkpoint);
    String key = container == null ? layout.manifestKey() : layout.containerManifestKey(container);
    byte[] bytes = readBounded(store, key);
    String actual = Sha256.hexOf(bytes);
    if (bytes.length > MAX_MANIFEST_BYTES || !actual.equalsIgnoreCase(recorded.manifestSha256)) {
      throw new StoredCheckpointException("ManifestTampered", "the manifest at " + store.uri(key) + " is not the one"
          + " stored when the checkpoint was taken (" + (bytes.length > MAX_MANIFEST_BYTES
              ? "it is larger than " + MAX_MANIFEST_BYTES + " bytes" : "its sha256 is " + actual)
          + ", the Checkpoint recorded " + recorded.manifestSha256 + "): someone who can write the storage changed it,"
          + " so nothing was restored from it. Restore another checkpoint, and check who may write to the storage");
    }
    Manifest manifest;
    try {
      manifest = Manifest.fromJson(bytes);
    } catch (ManifestException e) {
      throw new StoredCheckpointException("ManifestInvalid", e.getMessage());
    }
    String archiveKey = container == null ? layout.archiveKey(manifest.archive.codec)
        : layout.containerArchiveKey(container, manifest.archive.codec);
    List<String> mismatches = mismatches(manifest, checkpoint, container, archiveKey, recorded);
    String chunkIndexKey = container == null ? layout.chunkIndexKey() : layout.containerChunkIndexKey(container);
    if (manifest.isChunked() && !chunkIndexKey.equals(manifest.chunks.indexKey)) {
      mismatches.add("it names the chunk index " + manifest.chunks.indexKey + ", not " + chunkIndexKey);
    }
    if (!mismatches.isEmpty()) {
      throw new StoredCheckpointException("ManifestInvalid", "the manifest at " + store.uri(key)
          + " does not describe what the Checkpoint's status recorded: " + String.join("; ", mismatches) + ELSEWHERE);
    }
    ArchiveIdentity identity = new ArchiveIdentity(meta.getNamespace(), meta.getUid(), container == null ? "" : container);
    return new RecordedManifest(manifest, archiveKey, identity,
        new ArchiveSummary(recorded.sizeBytes, recorded.storedBytes, recorded.sha256));
  }

  /**
   * The chunk index of a deduplicated checkpoint, read and checked against the size and sha256 its
   * manifest (checked against the status) recorded, before anyone parses a byte of it.
   *
   * @throws ArchiveIntegrityException when it is not that index
   * @throws ObjectNotFoundException when it is gone
   */
  public byte[] chunkIndex(ObjectStore store) throws IOException {
    Manifest.Chunks chunks = manifest.chunks;
    byte[] index;
    try (InputStream in = store.open(chunks.indexKey)) {
      index = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, chunks.indexBytes + 1));
    }
    String sha256 = Sha256.hexOf(index);
    if (index.length != chunks.indexBytes || !sha256.equalsIgnoreCase(chunks.indexSha256)) {
      throw new ArchiveIntegrityException("the chunk index " + store.uri(chunks.indexKey) + " is not the one stored"
          + " with the checkpoint (" + index.length + " bytes with sha256 " + sha256 + ", its manifest recorded "
          + chunks.indexBytes + " bytes with sha256 " + chunks.indexSha256 + ")");
    }
    return index;
  }

  /** The archive a Checkpoint's status records for {@code container} (null: its process archive). */
  public static ArchiveStatus recordedArchive(Checkpoint checkpoint, String container) {
    var status = checkpoint.getStatus();
    if (status == null) {
      return null;
    }
    if (container == null) {
      return status.archive;
    }
    List<ContainerCheckpointStatus> containers = status.containers == null ? List.of() : status.containers;
    return containers.stream().filter(c -> container.equals(c.name)).findFirst().map(c -> c.archive).orElse(null);
  }

  private static byte[] readBounded(ObjectStore store, String key) throws StoredCheckpointException {
    try (InputStream in = store.open(key)) {
      return in.readNBytes(MAX_MANIFEST_BYTES + 1);
    } catch (ObjectNotFoundException e) {
      throw new StoredCheckpointException("ManifestMissing", "the checkpoint's manifest " + e.getMessage()
          + " is gone: the archive was deleted or its upload never finished" + ELSEWHERE);
    } catch (IOException e) {
      throw new StoredCheckpointException("StorageUnavailable", "cannot read the checkpoint's manifest: " + e.getMessage());
    }
  }

  private static List<String> mismatches(Manifest manifest, Checkpoint checkpoint, String container, String archiveKey,
      ArchiveStatus recorded) {
    var meta = checkpoint.getMetadata();
    var source = manifest.source;
    List<String> mismatches = new ArrayList<>();
    if (!meta.getUid().equals(source.checkpointUid) || !meta.getNamespace().equals(source.namespace)
        || !meta.getName().equals(source.checkpointName)) {
      mismatches.add("it belongs to another checkpoint (" + source.namespace + "/" + source.checkpointName + ", uid "
          + source.checkpointUid + ")");
    }
    if (!Objects.equals(container, source.containerName)) {
      mismatches.add("it describes container " + source.containerName + ", not " + container);
    }
    if (!archiveKey.equals(manifest.archive.key)) {
      mismatches.add("it names the archive " + manifest.archive.key + ", not " + archiveKey);
    }
    if (!manifest.archive.sha256.equalsIgnoreCase(recorded.sha256)
        || !manifest.archive.storedBytes.equals(recorded.storedBytes)) {
      mismatches.add("its archive is " + manifest.archive.storedBytes + " bytes with sha256 " + manifest.archive.sha256
          + ", the Checkpoint recorded " + recorded.storedBytes + " bytes with sha256 " + recorded.sha256);
    }
    return mismatches;
  }
}
