package dev.stasis.kube;

/**
 * A stored checkpoint cannot be used as its Checkpoint's status records it, with the reason a
 * Restore shows for it (ManifestMissing, ManifestUnverified, ManifestTampered, ManifestInvalid,
 * StorageUnavailable).
 */
public class StoredCheckpointException extends Exception {
  private final String reason;

  public StoredCheckpointException(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
