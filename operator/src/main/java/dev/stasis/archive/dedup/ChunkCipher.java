package dev.stasis.archive.dedup;

import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.Hkdf;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.regex.Pattern;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Deterministic authenticated encryption of chunks for one namespace (docs/dedup.md): the SIV
 * pattern over AES-256-GCM. The nonce is the first 96 bits of the chunk's name, an HMAC of the
 * plaintext under a key independent of the encryption key, so equal chunks become equal objects
 * (stored once) and different chunks never share a nonce but with negligible probability.
 *
 * <pre>
 * object = "STSC" | version 1 | key id length (1) | key id | AES-256-GCM(K_enc, name[0..12), chunk, aad)
 * aad    = object header | namespace
 * K_enc  = HKDF-SHA256(namespace chunk key, "stasis chunk encryption v1", namespace)
 * </pre>
 *
 * Opening checks the header's key id, GCM's tag, and then that the plaintext has the name it was
 * fetched by: an object copied over another chunk of the same namespace authenticates under GCM
 * but not under its name. Not thread-safe: one per thread.
 */
public final class ChunkCipher {
  private static final byte[] MAGIC = "STSC".getBytes(StandardCharsets.US_ASCII);
  private static final byte VERSION = 1;
  private static final byte[] SALT = "stasis chunk encryption v1".getBytes(StandardCharsets.UTF_8);
  private static final int NONCE_BYTES = 12;
  private static final int TAG_BITS = 128;
  private static final Pattern CHUNK_NAME = Pattern.compile("[0-9a-f]{64}");

  private final ChunkNamer namer;
  private final SecretKeySpec key;
  private final String keyId;
  private final byte[] header;
  private final byte[] aad;

  private ChunkCipher(ChunkNamer namer, byte[] encryptionKey, String keyId, String namespace) {
    this.namer = namer;
    this.key = new SecretKeySpec(encryptionKey, "AES");
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
    this.aad = out.toByteArray();
  }

  /** {@code chunkKey}: the namespace's chunk key for storage key {@code keyId} (docs/dedup.md). */
  public static ChunkCipher forNamespace(String keyId, byte[] chunkKey, String namespace) {
    ChunkNamer namer = ChunkNamer.forNamespace(chunkKey, namespace);
    return new ChunkCipher(namer, Hkdf.sha256(chunkKey, SALT, namespace.getBytes(StandardCharsets.UTF_8)), keyId,
        namespace);
  }

  /** A chunk ready to store: its name (the object's key) and the object's bytes. */
  public record Sealed(String name, byte[] object) {}

  public Sealed seal(byte[] bytes, int offset, int length) {
    String name = namer.name(bytes, offset, length);
    try {
      // A fresh Cipher each time: the JDK's GCM refuses to encrypt twice with one key and nonce on
      // one instance, which is what sealing the same chunk again must do.
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce(name)));
      gcm.updateAAD(aad);
      byte[] object = Arrays.copyOf(header, header.length + gcm.getOutputSize(length));
      gcm.doFinal(bytes, offset, length, object, header.length);
      return new Sealed(name, object);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM refused a 32-byte key and a 12-byte nonce", e);
    }
  }

  /** The chunk stored as {@code object} under {@code name}, only if it is exactly that chunk. */
  public byte[] open(String name, byte[] object) throws ArchiveAuthenticationException {
    if (!CHUNK_NAME.matcher(name).matches()) {
      throw new ArchiveAuthenticationException("'" + name + "' is not a chunk name (64 hex digits)");
    }
    if (object.length < header.length || !Arrays.equals(object, 0, header.length, header, 0, header.length)) {
      throw new ArchiveAuthenticationException("chunk " + name + " is not a version " + VERSION
          + " chunk encrypted with key '" + keyId + "'");
    }
    byte[] plain;
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      gcm.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce(name)));
      gcm.updateAAD(aad);
      plain = gcm.doFinal(object, header.length, object.length - header.length);
    } catch (AEADBadTagException e) {
      throw new ArchiveAuthenticationException("chunk " + name + " fails authentication: altered, or stored for"
          + " another namespace", e);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM refused a 32-byte key and a 12-byte nonce", e);
    }
    if (!namer.matches(name, plain, 0, plain.length)) {
      throw new ArchiveAuthenticationException("chunk " + name + " holds another chunk's bytes");
    }
    return plain;
  }

  private static byte[] nonce(String name) {
    return Arrays.copyOf(HexFormat.of().parseHex(name), NONCE_BYTES);
  }
}
