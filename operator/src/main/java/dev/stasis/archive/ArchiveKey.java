package dev.stasis.archive;

import java.util.Arrays;
import java.util.Objects;

/**
 * One AES-256 key that archives are encrypted with, and the id the manifest names it by, so that a
 * restore finds the very key its archive was written with after newer keys were added.
 */
public final class ArchiveKey {
  public static final int BYTES = 32;

  private final String id;
  private final byte[] bytes;

  public ArchiveKey(String id, byte[] bytes) {
    this.id = Objects.requireNonNull(id, "id");
    if (bytes.length != BYTES) {
      throw new IllegalArgumentException("key '" + id + "' is " + bytes.length + " bytes; AES-256 needs " + BYTES);
    }
    this.bytes = bytes.clone();
  }

  public String id() {
    return id;
  }

  byte[] bytes() {
    return bytes.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ArchiveKey other && id.equals(other.id) && Arrays.equals(bytes, other.bytes);
  }

  @Override
  public int hashCode() {
    return id.hashCode();
  }

  /** Never the key itself: keys must not end up in logs. */
  @Override
  public String toString() {
    return "ArchiveKey[" + id + "]";
  }
}
