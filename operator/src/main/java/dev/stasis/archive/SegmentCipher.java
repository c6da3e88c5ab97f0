package dev.stasis.archive;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The encrypted archive format, {@value #ALGORITHM}: the STREAM construction (Hoang, Reyhanitabar,
 * Rogaway, Vizár 2015) over AES-256-GCM, as Tink's streaming AEAD does it.
 *
 * <pre>
 * header   = "STSE" | version 2 | segment bytes (u32) | salt (32) | nonce prefix (7)
 * segments = AES-GCM(segment key, nonce, plaintext segment, aad) = ciphertext | 16-byte tag, each
 * segment key = HKDF-SHA256(archive key, salt, {@value #INFO})
 * nonce    = nonce prefix (7) | segment index (u32) | 1 if the last segment else 0
 * aad      = header | archive identity and key id | segment index (u32) | last flag (1)
 * </pre>
 *
 * The archive key is the storage key derived for this one archive ({@link BoundKey}), and the
 * archive's identity (namespace, checkpoint UID, container) and key id are authenticated with every
 * segment: an archive copied over another checkpoint's does not decrypt there. Version 1, from
 * before archives were bound to their checkpoint, is not read. A fresh random salt per archive
 * gives every archive its own segment key, so nonces never repeat under one key. Every segment but the last holds exactly
 * {@code segment bytes} of plaintext; the last holds the rest (possibly none), so an empty archive
 * is one empty final segment. The index and the last-segment flag are bound into each tag: a
 * segment moved, dropped or repeated, or a stream cut at a segment boundary, fails to authenticate.
 */
final class SegmentCipher {
  static final String ALGORITHM = "AES-256-GCM-STREAM";
  static final int DEFAULT_SEGMENT_BYTES = 1 << 20;
  /** Bounds what a hostile header can make a reader allocate. */
  static final int MAX_SEGMENT_BYTES = 16 << 20;
  static final int TAG_BYTES = 16;
  static final byte[] MAGIC = "STSE".getBytes(StandardCharsets.US_ASCII);
  static final byte VERSION = 2;
  static final int SALT_BYTES = 32;
  static final int NONCE_PREFIX_BYTES = 7;
  static final int HEADER_BYTES = MAGIC.length + 1 + 4 + SALT_BYTES + NONCE_PREFIX_BYTES;
  /** Segment indexes are 32 bits in the nonce: 4 Ti segments, far beyond any checkpoint. */
  static final long MAX_SEGMENTS = 1L << 32;
  private static final String INFO = "stasis.dev/archive-encryption/v1";

  private final byte[] header;
  private final byte[] associatedData;
  private final SecretKeySpec segmentKey;
  private final byte[] noncePrefix;
  private final Cipher cipher;

  SegmentCipher(BoundKey key, byte[] header) {
    this.header = header.clone();
    this.associatedData = key.associatedData();
    ByteBuffer fields = ByteBuffer.wrap(header, MAGIC.length + 1 + 4, SALT_BYTES + NONCE_PREFIX_BYTES);
    byte[] salt = new byte[SALT_BYTES];
    fields.get(salt);
    this.noncePrefix = new byte[NONCE_PREFIX_BYTES];
    fields.get(noncePrefix);
    this.segmentKey = new SecretKeySpec(Hkdf.sha256(key.derivedBytes(), salt, INFO.getBytes(StandardCharsets.US_ASCII)), "AES");
    try {
      this.cipher = Cipher.getInstance("AES/GCM/NoPadding");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JVM lacks AES/GCM, which every Java 17 has", e);
    }
  }

  static byte[] header(int segmentBytes, byte[] salt, byte[] noncePrefix) {
    return ByteBuffer.allocate(HEADER_BYTES).put(MAGIC).put(VERSION).putInt(segmentBytes).put(salt).put(noncePrefix)
        .array();
  }

  /** The segment size a header declares; the header is otherwise checked by every segment's tag. */
  static int segmentBytes(byte[] header) throws ArchiveIntegrityException {
    ByteBuffer fields = ByteBuffer.wrap(header);
    byte[] magic = new byte[MAGIC.length];
    fields.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      throw new ArchiveIntegrityException("the archive does not start like an encrypted Stasis archive ("
          + ALGORITHM + "): it is not encrypted, or not an archive at all");
    }
    byte version = fields.get();
    if (version < VERSION) {
      throw new ArchiveIntegrityException("the archive is encrypted in format version " + version
          + ", which did not bind archives to their checkpoint; this agent reads version " + VERSION
          + " only: take a new checkpoint");
    }
    if (version != VERSION) {
      throw new ArchiveIntegrityException("the archive is encrypted in format version " + version
          + ", this agent reads version " + VERSION + "; upgrade the agent");
    }
    int segmentBytes = fields.getInt();
    if (segmentBytes < 1 || segmentBytes > MAX_SEGMENT_BYTES) {
      throw new ArchiveIntegrityException("the encrypted archive's header declares segments of " + segmentBytes
          + " bytes; valid are 1 to " + MAX_SEGMENT_BYTES);
    }
    return segmentBytes;
  }

  /** Encrypts {@code plaintext[0, length)} into {@code out}; returns the bytes written (length + tag). */
  int encrypt(long index, boolean last, byte[] plaintext, int length, byte[] out) {
    try {
      cipher.init(Cipher.ENCRYPT_MODE, segmentKey, new GCMParameterSpec(TAG_BYTES * 8, nonce(index, last)));
      cipher.updateAAD(aad(index, last));
      return cipher.doFinal(plaintext, 0, length, out, 0);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM refused to encrypt segment " + index, e);
    }
  }

  /**
   * Decrypts {@code ciphertext[0, length)} into {@code out}; returns the plaintext bytes.
   *
   * @throws javax.crypto.AEADBadTagException when the segment does not authenticate
   */
  int decrypt(long index, boolean last, byte[] ciphertext, int length, byte[] out) throws GeneralSecurityException {
    cipher.init(Cipher.DECRYPT_MODE, segmentKey, new GCMParameterSpec(TAG_BYTES * 8, nonce(index, last)));
    cipher.updateAAD(aad(index, last));
    return cipher.doFinal(ciphertext, 0, length, out, 0);
  }

  private byte[] nonce(long index, boolean last) {
    return ByteBuffer.allocate(NONCE_PREFIX_BYTES + 5).put(noncePrefix).putInt((int) index).put((byte) (last ? 1 : 0))
        .array();
  }

  private byte[] aad(long index, boolean last) {
    return ByteBuffer.allocate(header.length + associatedData.length + 5).put(header).put(associatedData)
        .putInt((int) index).put((byte) (last ? 1 : 0)).array();
  }
}
