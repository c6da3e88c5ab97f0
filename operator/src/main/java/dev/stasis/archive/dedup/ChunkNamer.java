package dev.stasis.archive.dedup;

import dev.stasis.archive.Hkdf;
import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Names chunks for one namespace: HMAC-SHA256 of the chunk's bytes under a key derived (HKDF) from
 * the namespace's chunk key and the namespace (docs/dedup.md). The same bytes get the same name within a
 * namespace, so they are stored once; another namespace, or anyone without the secret, cannot
 * tell from a name what the chunk holds or whether it holds the same as one of theirs. A name is
 * also the check a restore makes on each chunk it fetches. Not thread-safe: one per thread.
 */
public final class ChunkNamer {
  private static final byte[] SALT = "stasis chunk names v1".getBytes(StandardCharsets.UTF_8);
  static final int KEY_BYTES = 32;

  private final Mac hmac;

  private ChunkNamer(byte[] namespaceKey) {
    try {
      hmac = Mac.getInstance("HmacSHA256");
      hmac.init(new SecretKeySpec(namespaceKey, "HmacSHA256"));
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("this JVM lacks HmacSHA256, which every Java 17 has", e);
    }
  }

  /** {@code chunkKey}: the namespace's 32-byte chunk key, derived from a secret never in the store. */
  public static ChunkNamer forNamespace(byte[] chunkKey, String namespace) {
    if (chunkKey.length != KEY_BYTES) {
      throw new IllegalArgumentException("a chunk key must be " + KEY_BYTES + " bytes, got " + chunkKey.length);
    }
    if (namespace.isEmpty()) {
      throw new IllegalArgumentException("chunks are named for a namespace, and the namespace is empty");
    }
    return new ChunkNamer(Hkdf.sha256(chunkKey, SALT, namespace.getBytes(StandardCharsets.UTF_8)));
  }

  /** 64 hex digits. */
  public String name(byte[] bytes, int offset, int length) {
    hmac.update(bytes, offset, length);
    return HexFormat.of().formatHex(hmac.doFinal());
  }

  /** Whether fetched bytes are the chunk {@code name} names; compared in constant time. */
  public boolean matches(String name, byte[] bytes, int offset, int length) {
    byte[] expected = name.getBytes(StandardCharsets.US_ASCII);
    byte[] actual = name(bytes, offset, length).getBytes(StandardCharsets.US_ASCII);
    return MessageDigest.isEqual(expected, actual);
  }
}
