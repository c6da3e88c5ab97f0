package dev.stasis.agent.checkpoint;

import dev.stasis.agent.profile.NodeFingerprint;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.Conditions;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.Manifest;

/**
 * What the manifest of every checkpoint records, of a process or of a pod's container: whose
 * checkpoint it is, the node it was taken on and that node's profile (what a restore is matched
 * against), and the archive as it was stored. Each job adds what is its own (CRIU's options; the
 * pod, its container and the runtime).
 */
final class CheckpointManifest {
  private CheckpointManifest() {}

  static Manifest of(Checkpoint checkpoint, String node, NodeProfileSpec profile, String archiveKey,
      ArchiveCodec codec, ArchiveSummary stored) {
    var meta = checkpoint.getMetadata();
    Manifest m = new Manifest();
    m.createdAt = Conditions.now();
    m.source = new Manifest.Source();
    m.source.namespace = meta.getNamespace();
    m.source.checkpointName = meta.getName();
    m.source.checkpointUid = meta.getUid();
    m.source.node = node;
    m.nodeProfile = NodeFingerprint.asMap(profile);
    m.archive = new Manifest.Archive();
    m.archive.key = archiveKey;
    m.archive.codec = codec;
    m.archive.sizeBytes = stored.sizeBytes();
    m.archive.storedBytes = stored.storedBytes();
    m.archive.sha256 = stored.sha256();
    return m;
  }
}
