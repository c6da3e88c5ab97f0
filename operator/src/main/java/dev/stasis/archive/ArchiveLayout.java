package dev.stasis.archive;

/**
 * Where one checkpoint's objects live in storage: everything sits under
 * {@code <namespace>/<checkpointName>-<uid>/}, so a checkpoint recreated under the same name never
 * meets its predecessor's objects, and deleting the checkpoint is deleting one prefix.
 */
public record ArchiveLayout(String namespace, String checkpointName, String checkpointUid) {

  public static final String MANIFEST_FILE_NAME = "manifest.json";

  public ArchiveLayout {
    requireKeySegment("namespace", namespace);
    requireKeySegment("checkpointName", checkpointName);
    requireKeySegment("checkpointUid", checkpointUid);
  }

  /** The key prefix holding all of this checkpoint's objects, ending in '/'. */
  public String prefix() {
    return namespace + "/" + checkpointName + "-" + checkpointUid + "/";
  }

  public String archiveKey(ArchiveCodec codec) {
    return prefix() + codec.fileName();
  }

  /** The manifest is written after the archive; its presence marks the checkpoint as complete. */
  public String manifestKey() {
    return prefix() + MANIFEST_FILE_NAME;
  }

  /**
   * The prefix of one container's archive and manifest in a pod checkpoint, which stores each
   * container as a checkpoint of its own: {@code <prefix>/containers/<container>/}.
   */
  public String containerPrefix(String container) {
    requireKeySegment("container", container);
    return prefix() + "containers/" + container + "/";
  }

  public String containerArchiveKey(String container, ArchiveCodec codec) {
    return containerPrefix(container) + codec.fileName();
  }

  public String containerManifestKey(String container) {
    return containerPrefix(container) + MANIFEST_FILE_NAME;
  }

  // Kubernetes names and UIDs never contain these, so anything else is a caller's bug that would
  // otherwise scatter objects across other checkpoints' prefixes.
  private static void requireKeySegment(String what, String value) {
    if (value == null || value.isBlank() || value.contains("/") || value.equals("..")) {
      throw new IllegalArgumentException(what + " must be a non-empty name without '/', got: " + value);
    }
  }
}
