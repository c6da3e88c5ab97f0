package dev.stasis.archive;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * The key of one archive: derived from a storage key for that archive's {@link ArchiveIdentity}
 * alone, and carrying that identity, which every encrypted segment authenticates. Holding it opens
 * that one archive, not the others the storage key encrypted.
 */
public final class BoundKey {
  private static final String INFO = "stasis.dev/archive-key/v2";
  /** RFC 5869: without a salt, HashLen zero bytes. The storage key is random already. */
  private static final byte[] NO_SALT = new byte[32];

  private final String keyId;
  private final byte[] bytes;
  private final ArchiveIdentity identity;

  private BoundKey(String keyId, byte[] bytes, ArchiveIdentity identity) {
    this.keyId = keyId;
    this.bytes = bytes;
    this.identity = identity;
  }

  /** The key of the archive {@code identity}, derived from the storage key {@code key}. */
  public static BoundKey of(ArchiveKey key, ArchiveIdentity identity) {
    Objects.requireNonNull(identity, "identity");
    byte[] info = concat(INFO.getBytes(StandardCharsets.US_ASCII), identity.encode(key.id()));
    return new BoundKey(key.id(), Hkdf.sha256(key.bytes(), NO_SALT, info), identity);
  }

  /**
   * The key of the archive {@code identity} as {@link #of(ArchiveKey, ArchiveIdentity)} derived it
   * elsewhere (the operator, which hands a node the keys of its own work only).
   */
  public static BoundKey derived(String keyId, byte[] derivedBytes, ArchiveIdentity identity) {
    if (derivedBytes.length != ArchiveKey.BYTES) {
      throw new IllegalArgumentException("the key of " + identity + " is " + derivedBytes.length + " bytes, not "
          + ArchiveKey.BYTES);
    }
    return new BoundKey(Objects.requireNonNull(keyId, "keyId"), derivedBytes.clone(), Objects.requireNonNull(identity));
  }

  /** The derived key's bytes, to hand over to a node ({@link #derived}); never to be logged. */
  public byte[] derivedBytes() {
    return bytes.clone();
  }

  /** The storage key's id, which the manifest names so that a restore finds the key again. */
  public String keyId() {
    return keyId;
  }

  public ArchiveIdentity identity() {
    return identity;
  }

  /** What every segment authenticates besides its own position: the archive's identity and the key id. */
  byte[] associatedData() {
    return identity.encode(keyId);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] joined = new byte[a.length + b.length];
    System.arraycopy(a, 0, joined, 0, a.length);
    System.arraycopy(b, 0, joined, a.length, b.length);
    return joined;
  }

  /** Never the key itself: keys must not end up in logs. */
  @Override
  public String toString() {
    return "BoundKey[" + keyId + " for " + identity + "]";
  }
}
