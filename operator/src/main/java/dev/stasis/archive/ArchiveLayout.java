package dev.stasis.archive;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where one checkpoint's objects live in storage: everything sits under
 * {@code <namespace>/<checkpointName>-<uid>/}, so a checkpoint recreated under the same name never
 * meets its predecessor's objects, and deleting the checkpoint is deleting one prefix.
 */
public record ArchiveLayout(String namespace, String checkpointName, String checkpointUid) {

  public static final String MANIFEST_FILE_NAME = "manifest.json";
  /** Written when a Checkpoint is deleted but its archive kept on purpose (spec.retainArchive). */
  public static final String RETAINED_MARKER_FILE_NAME = "retained";
  /** A deduplicated checkpoint's chunk index (archive.dedup.ChunkIndex), next to its manifest. */
  public static final String CHUNK_INDEX_FILE_NAME = "chunks.idx";
  /**
   * Under a namespace: the chunks of its deduplicated checkpoints, shared by every checkpoint of the
   * namespace in this storage and never by another namespace's. A dot, so no checkpoint's prefix
   * ({@code <name>-<uid>/}) can be mistaken for it.
   */
  public static final String CHUNKS_FOLDER = ".chunks/";
  /**
   * Under a namespace: the packs its checkpoints store new chunks in (pack-design.md), each
   * {@code <packId>.pack} with its {@code <packId>.idx} next to it.
   */
  public static final String PACKS_FOLDER = ".packs/";
  public static final String PACK_SUFFIX = ".pack";
  public static final String PACK_INDEX_SUFFIX = ".idx";
  /** {@code <namespace>/<name>-<uid>/<file...>} with Kubernetes names and a Kubernetes UID (a UUID). */
  private static final Pattern KEY = Pattern.compile(
      "([a-z0-9][-a-z0-9]*)/([a-z0-9][-.a-z0-9]*)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.+");

  private static final Pattern CHUNK_NAME = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern CHUNK_KEY = Pattern.compile("([a-z0-9][-a-z0-9]*)/\\.chunks/([0-9a-f]{2})/([0-9a-f]{64})");
  private static final Pattern PACK_ID = Pattern.compile("[0-9a-f]{32}");
  private static final Pattern PACK_KEY =
      Pattern.compile("([a-z0-9][-a-z0-9]*)/\\.packs/([0-9a-f]{2})/([0-9a-f]{32})(\\.pack|\\.idx)");

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

  /** The chunk index of a deduplicated pod checkpoint's container: its pages images' chunks. */
  public String containerChunkIndexKey(String container) {
    return containerPrefix(container) + CHUNK_INDEX_FILE_NAME;
  }

  public String chunkIndexKey() {
    return prefix() + CHUNK_INDEX_FILE_NAME;
  }

  /** Where a namespace's chunks live: {@code <namespace>/.chunks/}. */
  public static String chunkPrefix(String namespace) {
    requireKeySegment("namespace", namespace);
    return namespace + "/" + CHUNKS_FOLDER;
  }

  /**
   * A chunk's key: {@code <namespace>/.chunks/<first two digits>/<name>}, the two digits spreading
   * a large namespace's chunks over 256 folders for stores that are directories.
   */
  public static String chunkKey(String namespace, String chunkName) {
    if (!CHUNK_NAME.matcher(chunkName).matches()) {
      throw new IllegalArgumentException("a chunk name is 64 lowercase hex digits, got: " + chunkName);
    }
    return chunkPrefix(namespace) + chunkName.substring(0, 2) + "/" + chunkName;
  }

  /** A stored chunk: its namespace and name. */
  public record StoredChunk(String namespace, String name) {}

  /** The chunk a stored key is; empty for keys that are not chunks laid out by {@link #chunkKey}. */
  public static Optional<StoredChunk> ofChunkKey(String key) {
    Matcher m = CHUNK_KEY.matcher(key);
    return m.matches() && m.group(2).equals(m.group(3).substring(0, 2))
        ? Optional.of(new StoredChunk(m.group(1), m.group(3))) : Optional.empty();
  }

  /** Where a namespace's packs and their indexes live: {@code <namespace>/.packs/}. */
  public static String packPrefix(String namespace) {
    requireKeySegment("namespace", namespace);
    return namespace + "/" + PACKS_FOLDER;
  }

  /** A pack: {@code <namespace>/.packs/<first two digits>/<packId>.pack}; {@code packId} is 32 lowercase hex digits. */
  public static String packKey(String namespace, String packId) {
    return packFolder(namespace, packId) + packId + PACK_SUFFIX;
  }

  /** A pack's index, next to it: {@code <namespace>/.packs/<first two digits>/<packId>.idx}. */
  public static String packIndexKey(String namespace, String packId) {
    return packFolder(namespace, packId) + packId + PACK_INDEX_SUFFIX;
  }

  private static String packFolder(String namespace, String packId) {
    if (!PACK_ID.matcher(packId).matches()) {
      throw new IllegalArgumentException("a pack id is 32 lowercase hex digits, got: " + packId);
    }
    return packPrefix(namespace) + packId.substring(0, 2) + "/";
  }

  /** A stored pack or pack index: its namespace, pack id, and which of the two the key is. */
  public record StoredPackObject(String namespace, String packId, boolean index) {}

  /** The pack or pack index a stored key is; empty for keys not laid out by {@link #packKey} or {@link #packIndexKey}. */
  public static Optional<StoredPackObject> ofPackKey(String key) {
    Matcher m = PACK_KEY.matcher(key);
    return m.matches() && m.group(2).equals(m.group(3).substring(0, 2))
        ? Optional.of(new StoredPackObject(m.group(1), m.group(3), m.group(4).equals(PACK_INDEX_SUFFIX)))
        : Optional.empty();
  }

  public String retainedMarkerKey() {
    return prefix() + RETAINED_MARKER_FILE_NAME;
  }

  /** The checkpoint a stored key belongs to; empty for keys that are not laid out by Stasis. */
  public static Optional<ArchiveLayout> ofKey(String key) {
    Matcher m = KEY.matcher(key);
    return m.matches() ? Optional.of(new ArchiveLayout(m.group(1), m.group(2), m.group(3))) : Optional.empty();
  }

  // Kubernetes names and UIDs never contain these, so anything else is a caller's bug that would
  // otherwise scatter objects across other checkpoints' prefixes.
  private static void requireKeySegment(String what, String value) {
    if (value == null || value.isBlank() || value.contains("/") || value.equals("..")) {
      throw new IllegalArgumentException(what + " must be a non-empty name without '/', got: " + value);
    }
  }
}
