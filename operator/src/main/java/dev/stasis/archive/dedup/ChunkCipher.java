package dev.stasis.archive.dedup;

import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.Hkdf;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.regex.Pattern;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Deterministic authenticated encryption of stored chunks for one namespace (docs/dedup.md): the
 * SIV pattern over AES-256-GCM. The nonce is an HMAC of the very bytes encrypted (the chunk as
 * stored: compressed or raw, {@link ChunkObjects}) under a key independent of the encryption key,
 * so equal chunks become equal objects (stored once) and two different messages never share a
 * nonce but with negligible probability, whatever the compressor made of them.
 *
 * <pre>
 * object = "STSC" | version 2 | key id length (1) | key id | nonce (12) | AES-256-GCM(K_enc, nonce, message, aad)
 * aad    = object header | namespace | chunk name
 * nonce  = HMAC-SHA256(K_nonce, message)[0..12)
 * K_enc  = HKDF-SHA256(namespace chunk key, "stasis chunk encryption v2", namespace)
 * K_nonce= HKDF-SHA256(namespace chunk key, "stasis chunk nonces v2", namespace)
 * </pre>
 *
 * Opening checks the header's key id and GCM's tag, which covers the name the object was fetched
 * by: an object copied over another chunk's name does not open. Not thread-safe: one per thread.
 */
public final class ChunkCipher {
  /** What a manifest's {@code chunks.encryption} says of chunks sealed by this class. */
  public static final String ALGORITHM = "AES-256-GCM-SIV";
  private static final byte[] MAGIC = "STSC".getBytes(StandardCharsets.US_ASCII);
  private static final byte VERSION = 2;
  private static final byte[] ENCRYPTION_SALT = "stasis chunk encryption v2".getBytes(StandardCharsets.UTF_8);
  private static final byte[] NONCE_SALT = "stasis chunk nonces v2".getBytes(StandardCharsets.UTF_8);
  private static final int NONCE_BYTES = 12;
  private static final int TAG_BITS = 128;
  private static final Pattern CHUNK_NAME = Pattern.compile("[0-9a-f]{64}");

  private final SecretKeySpec key;
  private final Mac nonces;
  private final String keyId;
  private final byte[] header;
  private final byte[] namespaceAad;

  private ChunkCipher(byte[] encryptionKey, byte[] nonceKey, String keyId, String namespace) {
    this.key = new SecretKeySpec(encryptionKey, "AES");
    try {
      this.nonces = Mac.getInstance("HmacSHA256");
      nonces.init(new SecretKeySpec(nonceKey, "HmacSHA256"));
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("this JVM lacks HmacSHA256, which every Java 17 has", e);
    }
    this.keyId = keyId;
    byte[] id = keyId.getBytes(StandardCharsets.UTF_8);
    if (id.length == 0 || id.length > 255) {
      throw new IllegalArgumentException("a key id is 1 to 255 bytes, got " + id.length);
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(MAGIC);
    out.write(VERSION);
    out.write(id.length);
    out.writeBytes(id);
    this.header = out.toByteArray();
    out.writeBytes(namespace.getBytes(StandardCharsets.UTF_8));
    this.namespaceAad = out.toByteArray();
  }

  /** {@code chunkKey}: the namespace's chunk key for storage key {@code keyId} (docs/dedup.md). */
  public static ChunkCipher forNamespace(String keyId, byte[] chunkKey, String namespace) {
    byte[] info = namespace.getBytes(StandardCharsets.UTF_8);
    return new ChunkCipher(Hkdf.sha256(chunkKey, ENCRYPTION_SALT, info), Hkdf.sha256(chunkKey, NONCE_SALT, info),
        keyId, namespace);
  }

  /** The object that stores {@code message} (a chunk as stored, {@link ChunkObjects}) under the chunk's {@code name}. */
  public byte[] seal(String name, byte[] message, int offset, int length) {
    requireName(name);
    nonces.update(message, offset, length);
    byte[] nonce = Arrays.copyOf(nonces.doFinal(), NONCE_BYTES);
    try {
      // A fresh Cipher each time: the JDK's GCM refuses to encrypt twice with one key and nonce on
      // one instance, which is what sealing the same chunk again must do.
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce));
      gcm.updateAAD(aad(name));
      byte[] object = Arrays.copyOf(header, header.length + NONCE_BYTES + gcm.getOutputSize(length));
      System.arraycopy(nonce, 0, object, header.length, NONCE_BYTES);
      gcm.doFinal(message, offset, length, object, header.length + NONCE_BYTES);
      return object;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM refused a 32-byte key and a 12-byte nonce", e);
    }
  }

  /** The message stored as {@code object} under {@code name}, only if it was sealed under that name with this key. */
  public byte[] open(String name, byte[] object) throws ArchiveAuthenticationException {
    return open(name, object, 0, object.length);
  }

  /** {@link #open(String, byte[])} of the object at {@code offset} in {@code bytes} (a ranged read of a pack). */
  public byte[] open(String name, byte[] bytes, int offset, int length) throws ArchiveAuthenticationException {
    if (name == null || !CHUNK_NAME.matcher(name).matches()) {
      throw new ArchiveAuthenticationException("'" + name + "' is not a chunk name (64 hex digits)");
    }
    if (length < header.length + NONCE_BYTES
        || !Arrays.equals(bytes, offset, offset + header.length, header, 0, header.length)) {
      throw new ArchiveAuthenticationException("chunk " + name + " is not a version " + VERSION
          + " chunk encrypted with key '" + keyId + "'");
    }
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BITS,
          Arrays.copyOfRange(bytes, offset + header.length, offset + header.length + NONCE_BYTES)));
      gcm.updateAAD(aad(name));
      return gcm.doFinal(bytes, offset + header.length + NONCE_BYTES, length - header.length - NONCE_BYTES);
    } catch (AEADBadTagException e) {
      throw new ArchiveAuthenticationException("chunk " + name + " fails authentication: altered, stored under"
          + " another chunk's name, or stored for another namespace", e);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM refused a 32-byte key and a 12-byte nonce", e);
    }
  }

  private byte[] aad(String name) {
    byte[] aad = Arrays.copyOf(namespaceAad, namespaceAad.length + name.length());
    System.arraycopy(name.getBytes(StandardCharsets.US_ASCII), 0, aad, namespaceAad.length, name.length());
    return aad;
  }

  private static void requireName(String name) {
    if (!CHUNK_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("a chunk name is 64 lowercase hex digits, got: " + name);
    }
  }
}
