package dev.stasis.agent.checkpoint;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;

/**
 * A manifest as it was stored, the commit marker of its archive, with the sha256 of its bytes: the
 * Checkpoint's status records that digest, and every reader checks the manifest against it.
 */
record CommittedManifest(Manifest manifest, String sha256, long newBytes) {

  /** Writes the manifest last, after its archive was committed. */
  static CommittedManifest put(ObjectStore store, String key, Manifest manifest) throws IOException {
    return put(store, key, manifest, manifest.archive.storedBytes);
  }

  /**
   * Writes the manifest last, after its archive (and chunks and index) were committed.
   *
   * @param newBytes what the checkpoint added to storage: its archive, and the index and new chunks of a
   *     deduplicated one
   */
  static CommittedManifest put(ObjectStore store, String key, Manifest manifest, long newBytes) throws IOException {
    byte[] json = manifest.toJson();
    store.put(key, json);
    return new CommittedManifest(manifest, Sha256.hexOf(json), newBytes);
  }

  /** The archive as the Checkpoint's status records it. */
  ArchiveStatus archiveStatus(ObjectStore store) {
    ArchiveStatus archive = new ArchiveStatus();
    archive.uri = store.uri(manifest.archive.key);
    // The logical size: the archive's tar and, deduplicated, the memory images stored as chunks.
    archive.sizeBytes = manifest.archive.sizeBytes + (manifest.isChunked() ? manifest.chunks.imagesBytes : 0);
    archive.storedBytes = manifest.archive.storedBytes;
    archive.newBytes = newBytes;
    archive.sha256 = manifest.archive.sha256;
    archive.manifestSha256 = sha256;
    return archive;
  }
}
