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
record CommittedManifest(Manifest manifest, String sha256) {

  /** Writes the manifest last, after its archive was committed. */
  static CommittedManifest put(ObjectStore store, String key, Manifest manifest) throws IOException {
    byte[] json = manifest.toJson();
    store.put(key, json);
    return new CommittedManifest(manifest, Sha256.hexOf(json));
  }

  /** The archive as the Checkpoint's status records it. */
  ArchiveStatus archiveStatus(ObjectStore store) {
    ArchiveStatus archive = new ArchiveStatus();
    archive.uri = store.uri(manifest.archive.key);
    archive.sizeBytes = manifest.archive.sizeBytes;
    archive.storedBytes = manifest.archive.storedBytes;
    archive.sha256 = manifest.archive.sha256;
    archive.manifestSha256 = sha256;
    return archive;
  }
}
