package dev.stasis.archive.dedup;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdException;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ChunkKey;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Turns the chunks of one namespace into the objects that store them, and back: named over the
 * chunk's own bytes ({@link ChunkNamer}, so a name does not depend on the compressor), compressed on
 * its own (zstd, or kept raw when that does not shrink it, as archives are), then sealed when the
 * storage encrypts ({@link ChunkCipher}). Opening undoes each step and checks the chunk against
 * the name it was fetched by, so nothing but the very chunk named comes back.
 *
 * <pre>
 * message = 0 | chunk (raw)  or  1 | zstd frame of the chunk
 * object  = message, or ChunkCipher.seal(name, message) when encrypted
 * </pre>
 *
 * Not thread-safe: one per thread.
 */
public final class ChunkObjects {
  private static final byte RAW = 0;
  private static final byte ZSTD = 1;
  /** Fast: memory rarely compresses much, and what does (zero pages) compresses at any level. */
  private static final int LEVEL = 1;

  private final ChunkNamer namer;
  /** Null: the storage does not encrypt. */
  private final ChunkCipher cipher;
  private final boolean compress;

  private ChunkObjects(ChunkNamer namer, ChunkCipher cipher, boolean compress) {
    this.namer = namer;
    this.cipher = cipher;
    this.compress = compress;
  }

  /**
   * @param encrypt whether the chunks are sealed (the storage encrypts), or only named
   * @param compress whether chunks are compressed (the storage's compression is zstd)
   */
  public static ChunkObjects forNamespace(ChunkKey key, String namespace, boolean encrypt, boolean compress) {
    byte[] bytes = key.bytes();
    return new ChunkObjects(ChunkNamer.forNamespace(bytes, namespace),
        encrypt ? ChunkCipher.forNamespace(key.keyId(), bytes, namespace) : null, compress);
  }

  /** A chunk's name (the key it is stored under, {@link dev.stasis.archive.ArchiveLayout#chunkKey}). */
  public String name(byte[] chunk, int offset, int length) {
    return namer.name(chunk, offset, length);
  }

  /** The object that stores the chunk named {@code name} ({@link #name}). */
  public byte[] object(String name, byte[] chunk, int offset, int length) {
    byte[] message = message(chunk, offset, length);
    return cipher == null ? message : cipher.seal(name, message, 0, message.length);
  }

  private byte[] message(byte[] chunk, int offset, int length) {
    if (compress) {
      byte[] compressed = new byte[1 + (int) Zstd.compressBound(length)];
      long size = Zstd.compressByteArray(compressed, 1, compressed.length - 1, chunk, offset, length, LEVEL);
      if (!Zstd.isError(size) && size < length) {
        compressed[0] = ZSTD;
        return Arrays.copyOf(compressed, 1 + (int) size);
      }
    }
    byte[] raw = new byte[1 + length];
    raw[0] = RAW;
    System.arraycopy(chunk, offset, raw, 1, length);
    return raw;
  }

  /**
   * The chunk stored as {@code object} under {@code name}: {@code length} bytes whose name is
   * {@code name}, or an exception saying what is wrong with it.
   *
   * @throws ArchiveAuthenticationException when the object does not open under this namespace's key
   *     or holds another chunk than its name says
   * @throws ArchiveIntegrityException when it is not a chunk object of this format, or not {@code length} bytes
   */
  public byte[] open(String name, byte[] object, int length) throws IOException {
    return open(name, object, 0, object.length, length);
  }

  /**
   * {@link #open(String, byte[], int)} of the object of {@code objectLength} bytes at {@code offset}
   * in {@code bytes}: a chunk read out of a ranged read of a pack, without copying it out first.
   */
  public byte[] open(String name, byte[] bytes, int offset, int objectLength, int length) throws IOException {
    byte[] message = bytes;
    int from = offset;
    int messageLength = objectLength;
    if (cipher != null) {
      message = cipher.open(name, bytes, offset, objectLength);
      from = 0;
      messageLength = message.length;
    }
    if (messageLength == 0) {
      throw new ArchiveIntegrityException("chunk " + name + " is empty");
    }
    byte[] chunk;
    if (message[from] == RAW) {
      chunk = Arrays.copyOfRange(message, from + 1, from + messageLength);
    } else if (message[from] == ZSTD) {
      chunk = new byte[length];
      long size;
      try {
        size = Zstd.decompressByteArray(chunk, 0, length, message, from + 1, messageLength - 1);
      } catch (ZstdException e) {
        throw new ArchiveIntegrityException("chunk " + name + " does not decompress: " + e.getMessage());
      }
      if (Zstd.isError(size) || size != length) {
        throw new ArchiveIntegrityException("chunk " + name + " does not decompress to the " + length
            + " bytes the chunk index lists");
      }
    } else {
      throw new ArchiveIntegrityException("chunk " + name + " is not a stored chunk (it starts with byte "
          + message[from] + ")");
    }
    if (chunk.length != length) {
      throw new ArchiveIntegrityException("chunk " + name + " holds " + chunk.length + " bytes, the chunk index lists "
          + length);
    }
    checkName(name, chunk, 0, chunk.length);
    return chunk;
  }

  /**
   * {@link #open(String, byte[], int, int, int)}, except that a raw chunk of an unencrypted store is
   * checked where it lies in {@code bytes} and handed back as a view of them, not copied: a restore
   * writes it out before it reads the next object into the same buffer.
   */
  public ByteBuffer openInPlace(String name, byte[] bytes, int offset, int objectLength, int length) throws IOException {
    if (cipher == null && objectLength == length + 1 && bytes[offset] == RAW) {
      checkName(name, bytes, offset + 1, length);
      return ByteBuffer.wrap(bytes, offset + 1, length);
    }
    return ByteBuffer.wrap(open(name, bytes, offset, objectLength, length));
  }

  private void checkName(String name, byte[] chunk, int offset, int length) throws ArchiveAuthenticationException {
    if (!namer.matches(name, chunk, offset, length)) {
      throw new ArchiveAuthenticationException("chunk " + name + " holds other bytes than its name says: it was altered"
          + " or another chunk was stored under its name");
    }
  }
}
