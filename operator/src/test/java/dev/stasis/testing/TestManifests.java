package dev.stasis.testing;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;

/**
 * Manifests as an agent writes them, for reconciler tests that store a checkpoint without taking one,
 * and the record of them that the Checkpoint's status keeps.
 */
public final class TestManifests {
  private TestManifests() {}

  /** The manifest of {@code checkpoint}: its source, and an archive of {@code bytes} at {@code archiveKey}. */
  public static Manifest of(Checkpoint checkpoint, String archiveKey, long bytes) {
    Manifest m = new Manifest();
    m.source = new Manifest.Source();
    m.source.namespace = checkpoint.getMetadata().getNamespace();
    m.source.checkpointName = checkpoint.getMetadata().getName();
    m.source.checkpointUid = checkpoint.getMetadata().getUid();
    m.archive = new Manifest.Archive();
    m.archive.key = archiveKey;
    m.archive.codec = ArchiveCodec.ZSTD;
    m.archive.sha256 = "ab".repeat(32);
    m.archive.storedBytes = bytes;
    m.archive.sizeBytes = bytes;
    return m;
  }

  /** What a Checkpoint's status records of the archive of {@code manifest}, stored as {@code json}. */
  public static ArchiveStatus recorded(Manifest manifest, byte[] json) {
    ArchiveStatus archive = new ArchiveStatus();
    archive.sha256 = manifest.archive.sha256;
    archive.storedBytes = manifest.archive.storedBytes;
    archive.sizeBytes = manifest.archive.sizeBytes;
    archive.manifestSha256 = Sha256.hexOf(json);
    return archive;
  }
}
