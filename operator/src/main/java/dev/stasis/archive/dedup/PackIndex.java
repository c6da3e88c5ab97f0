package dev.stasis.archive.dedup;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.Hkdf;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * What one pack holds: for each stored chunk object in it, in pack order, its name, offset, stored
 * length and length before compression and encryption. The pack itself is nothing but those objects
 * concatenated, so the index is what lets a writer skip chunks already stored and a reader or the
 * garbage collector find a chunk whose hint went stale. It is written after its pack (an index never
 * names a missing pack) and authenticated: anyone who can write the bucket could otherwise make a
 * writer skip chunks it never stored, so no entry is used before the HMAC checks out.
 *
 * <p>Format (big-endian): {@code "STSP"}, version 1, u16 length + UTF-8 key id (the namespace chunk
 * key's), the 16-byte pack id, u32 count, then per chunk a 32-byte name, u64 offset, u32 stored bytes,
 * u32 bytes; then HMAC-SHA256 of everything before it under a key derived from the namespace chunk key
 * and the namespace ({@link Key}), distinct from the key that names chunks. The pack id inside the
 * MAC ties an index to its pack, the namespace in the derivation to its namespace. The chunks are
 * contiguous from offset 0, so the pack is exactly {@link #packBytes()} long.
 */
public record PackIndex(String keyId, String packId, List<Entry> entries) {
  /** No writer makes larger packs' indexes; a larger count is refused before anything is allocated. */
  public static final int MAX_ENTRIES = 1 << 20;
  private static final byte[] MAGIC = "STSP".getBytes(StandardCharsets.US_ASCII);
  private static final int VERSION = 1;
  private static final int PACK_ID_BYTES = 16;
  private static final int MAC_BYTES = 32;
  private static final int ENTRY_BYTES = ChunkIndex.NAME_BYTES + 8 + 4 + 4;
  private static final Pattern PACK_ID = Pattern.compile("[0-9a-f]{32}");
  private static final Pattern NAME = Pattern.compile("[0-9a-f]{64}");
  private static final HexFormat HEX = HexFormat.of();

  /** One stored chunk object in a pack. */
  public record Entry(String name, long offset, int storedBytes, int bytes) {
    public Entry {
      if (!NAME.matcher(name).matches()) {
        throw new IllegalArgumentException("a chunk name is 64 lowercase hex digits, got: " + name);
      }
      if (offset < 0 || bytes <= 0 || bytes > ChunkIndex.MAX_CHUNK_BYTES || storedBytes <= 0
          || storedBytes > ChunkIndex.MAX_STORED_BYTES) {
        throw new IllegalArgumentException("chunk " + name + " at " + offset + " has " + bytes + " bytes stored in "
            + storedBytes);
      }
    }
  }

  public PackIndex {
    if (keyId.isEmpty() || keyId.getBytes(StandardCharsets.UTF_8).length > 0xffff) {
      throw new IllegalArgumentException("a pack index names the key its chunks were made with, got: " + keyId);
    }
    if (!PACK_ID.matcher(packId).matches()) {
      throw new IllegalArgumentException("a pack id is 32 lowercase hex digits, got: " + packId);
    }
    entries = List.copyOf(entries);
    if (entries.size() > MAX_ENTRIES) {
      throw new IllegalArgumentException("a pack holds at most " + MAX_ENTRIES + " chunks, got " + entries.size());
    }
    long next = 0;
    for (Entry entry : entries) {
      if (entry.offset() != next) {
        throw new IllegalArgumentException("chunk " + entry.name() + " is at " + entry.offset() + " in pack " + packId
            + ", but the chunks before it end at " + next);
      }
      next += entry.storedBytes();
    }
  }

  /** The pack's length: its chunk objects, back to back. */
  public long packBytes() {
    return entries.isEmpty() ? 0 : entries.get(entries.size() - 1).offset() + entries.get(entries.size() - 1).storedBytes();
  }

  /** The index's bytes, MAC included. */
  public byte[] encode(Key key) {
    requireKey(key);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(MAGIC.length + 64 + entries.size() * ENTRY_BYTES + MAC_BYTES);
    try {
      DataOutputStream out = new DataOutputStream(bytes);
      out.write(MAGIC);
      out.writeByte(VERSION);
      byte[] keyIdBytes = keyId.getBytes(StandardCharsets.UTF_8);
      out.writeShort(keyIdBytes.length);
      out.write(keyIdBytes);
      out.write(HEX.parseHex(packId));
      out.writeInt(entries.size());
      for (Entry entry : entries) {
        out.write(HEX.parseHex(entry.name()));
        out.writeLong(entry.offset());
        out.writeInt(entry.storedBytes());
        out.writeInt(entry.bytes());
      }
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("a byte array cannot fail to be written", e);
    }
    byte[] body = bytes.toByteArray();
    byte[] mac = key.mac(body, body.length);
    byte[] whole = Arrays.copyOf(body, body.length + MAC_BYTES);
    System.arraycopy(mac, 0, whole, body.length, MAC_BYTES);
    return whole;
  }

  /**
   * The key id an index says it was made under, read without checking anything: only for skipping
   * indexes of another key (whose names cannot match the current key's), never for trusting one.
   *
   * @throws ArchiveIntegrityException when the bytes do not even start like a pack index
   */
  public static String keyIdOf(byte[] bytes) throws ArchiveIntegrityException {
    try {
      DataInputStream in = header(bytes);
      return readKeyId(in);
    } catch (ArchiveIntegrityException e) {
      throw e;
    } catch (IOException e) {
      throw new ArchiveIntegrityException("the pack index is truncated", e);
    }
  }

  /**
   * Reads an index stored as pack {@code packId}'s, checking its MAC under {@code key} before
   * anything else, then its structure.
   *
   * @throws ArchiveIntegrityException when the bytes are not an authentic, well-formed index of that
   *     pack under that key and namespace
   */
  public static PackIndex read(Key key, String packId, byte[] bytes) throws ArchiveIntegrityException {
    if (bytes.length < MAC_BYTES + MAGIC.length) {
      throw new ArchiveIntegrityException("the pack index of " + packId + " is truncated (" + bytes.length + " bytes)");
    }
    byte[] expected = key.mac(bytes, bytes.length - MAC_BYTES);
    if (!MessageDigest.isEqual(expected, Arrays.copyOfRange(bytes, bytes.length - MAC_BYTES, bytes.length))) {
      throw new ArchiveIntegrityException("the pack index of " + packId + " is not authentic: its HMAC does not match"
          + " under key " + key.keyId() + " of this namespace (altered, copied from another pack or namespace, or"
          + " made with another key)");
    }
    try {
      DataInputStream in = header(Arrays.copyOf(bytes, bytes.length - MAC_BYTES));
      String keyId = readKeyId(in);
      byte[] id = new byte[PACK_ID_BYTES];
      in.readFully(id);
      if (!keyId.equals(key.keyId()) || !HEX.formatHex(id).equals(packId)) {
        throw new ArchiveIntegrityException("the pack index of " + packId + " says it is pack " + HEX.formatHex(id)
            + " under key " + keyId);
      }
      int count = in.readInt();
      if (count < 0 || count > MAX_ENTRIES || (long) count * ENTRY_BYTES != in.available()) {
        throw new ArchiveIntegrityException("the pack index of " + packId + " says it has " + count
            + " chunks, and holds " + in.available() + " bytes of them");
      }
      List<Entry> entries = new ArrayList<>(count);
      byte[] name = new byte[ChunkIndex.NAME_BYTES];
      for (int i = 0; i < count; i++) {
        in.readFully(name);
        entries.add(new Entry(HEX.formatHex(name), in.readLong(), in.readInt(), in.readInt()));
      }
      return new PackIndex(keyId, packId, entries);
    } catch (ArchiveIntegrityException e) {
      throw e;
    } catch (EOFException e) {
      throw new ArchiveIntegrityException("the pack index of " + packId + " is truncated", e);
    } catch (IllegalArgumentException e) {
      throw new ArchiveIntegrityException("the pack index of " + packId + " is not valid: " + e.getMessage());
    } catch (IOException e) {
      throw new UncheckedIOException("a byte array cannot fail to be read", e);
    }
  }

  private static DataInputStream header(byte[] bytes) throws IOException {
    DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes));
    byte[] magic = in.readNBytes(MAGIC.length);
    if (!Arrays.equals(magic, MAGIC)) {
      throw new ArchiveIntegrityException("not a pack index (it does not start with STSP)");
    }
    int version = in.readUnsignedByte();
    if (version != VERSION) {
      throw new ArchiveIntegrityException("pack index version " + version + " is not one this build reads (" + VERSION
          + "); upgrade Stasis");
    }
    return in;
  }

  private static String readKeyId(DataInputStream in) throws IOException {
    int length = in.readUnsignedShort();
    byte[] keyId = in.readNBytes(length);
    if (keyId.length != length) {
      throw new EOFException();
    }
    return new String(keyId, StandardCharsets.UTF_8);
  }

  private void requireKey(Key key) {
    if (!key.keyId().equals(keyId)) {
      throw new IllegalArgumentException("pack index " + packId + " is for key " + keyId + ", not " + key.keyId());
    }
  }

  /**
   * The key that authenticates one namespace's pack indexes: HKDF of the namespace chunk key with its
   * own salt (so it is not the key that names chunks) and the namespace. Thread-safe.
   */
  public static final class Key {
    private static final byte[] SALT = "stasis pack index v1".getBytes(StandardCharsets.UTF_8);
    private final String keyId;
    private final byte[] macKey;

    private Key(String keyId, byte[] macKey) {
      this.keyId = keyId;
      this.macKey = macKey;
    }

    /** {@code chunkKey}: the namespace's 32-byte chunk key, whose id is {@code keyId}. */
    public static Key forNamespace(byte[] chunkKey, String keyId, String namespace) {
      if (chunkKey.length != ChunkNamer.KEY_BYTES) {
        throw new IllegalArgumentException("a chunk key must be " + ChunkNamer.KEY_BYTES + " bytes, got " + chunkKey.length);
      }
      if (namespace.isEmpty()) {
        throw new IllegalArgumentException("pack indexes belong to a namespace, and the namespace is empty");
      }
      return new Key(keyId, Hkdf.sha256(chunkKey, SALT, namespace.getBytes(StandardCharsets.UTF_8)));
    }

    public String keyId() {
      return keyId;
    }

    private byte[] mac(byte[] bytes, int length) {
      try {
        Mac hmac = Mac.getInstance("HmacSHA256");
        hmac.init(new SecretKeySpec(macKey, "HmacSHA256"));
        hmac.update(bytes, 0, length);
        return hmac.doFinal();
      } catch (NoSuchAlgorithmException | InvalidKeyException e) {
        throw new IllegalStateException("this JVM lacks HmacSHA256, which every Java 17 has", e);
      }
    }
  }
}
