package dev.stasis.archive;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The chunk key of one namespace in one storage, NK(ns) in docs/dedup.md: what names (and, when
 * the storage encrypts, seals) the namespace's chunks. Derived from a storage key (the current
 * encryption key, or the storage's chunk secret when it does not encrypt) for the namespace alone,
 * so a node granted it for its work's namespace learns nothing of another namespace's chunks.
 *
 * <pre>
 * NK(ns) = HKDF-SHA256(storage key, salt "stasis.dev/chunk-key/v1", info = len|ns | len|key id)
 * </pre>
 */
public final class ChunkKey {
  private static final byte[] SALT = "stasis.dev/chunk-key/v1".getBytes(StandardCharsets.US_ASCII);

  private final String keyId;
  private final byte[] bytes;

  private ChunkKey(String keyId, byte[] bytes) {
    this.keyId = Objects.requireNonNull(keyId, "keyId");
    if (bytes.length != ArchiveKey.BYTES) {
      throw new IllegalArgumentException("a chunk key is " + ArchiveKey.BYTES + " bytes, got " + bytes.length);
    }
    this.bytes = bytes.clone();
  }

  /** The chunk key of {@code namespace}, derived from the storage key {@code key}. */
  public static ChunkKey of(ArchiveKey key, String namespace) {
    if (namespace == null || namespace.isEmpty()) {
      throw new IllegalArgumentException("a chunk key is for a namespace, and none was given");
    }
    ByteArrayOutputStream info = new ByteArrayOutputStream();
    for (String field : new String[] {namespace, key.id()}) {
      byte[] utf8 = field.getBytes(StandardCharsets.UTF_8);
      info.writeBytes(ByteBuffer.allocate(4).putInt(utf8.length).array());
      info.writeBytes(utf8);
    }
    return new ChunkKey(key.id(), Hkdf.sha256(key.bytes(), SALT, info.toByteArray()));
  }

  /** A chunk key as {@link #of} derived it elsewhere (the operator, which grants it to a node). */
  public static ChunkKey derived(String keyId, byte[] derivedBytes) {
    return new ChunkKey(keyId, derivedBytes);
  }

  /** The id of the storage key (or chunk secret) it was derived from, which the manifest records. */
  public String keyId() {
    return keyId;
  }

  /** Its bytes, to grant or to derive the name and encryption keys from; never to be logged. */
  public byte[] bytes() {
    return bytes.clone();
  }

  /** Never the key itself: keys must not end up in logs. */
  @Override
  public String toString() {
    return "ChunkKey[" + keyId + "]";
  }
}
