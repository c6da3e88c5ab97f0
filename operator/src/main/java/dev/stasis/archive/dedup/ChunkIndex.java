package dev.stasis.archive.dedup;

import dev.stasis.archive.ArchiveIntegrityException;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * The chunk index of a deduplicated checkpoint: for each memory image left out of the archive, the
 * chunks it is cut into, in order, and the whole image's size. It is its own object next
 * to the manifest ({@code chunks.idx}), whose sha256 the manifest records; it is written and read as
 * a stream, so neither an agent nor the garbage collector holds a large process's index in memory.
 *
 * <p>Format (big-endian): {@code "STSI"}, version 2, then records, each a tag byte:
 * <ul>
 *   <li>{@code 1} image: u16 length, UTF-8 file name ({@code pages-<n>.img});</li>
 *   <li>{@code 2} chunk of the open image: 32-byte name (the HMAC, {@link ChunkNamer}), u32 bytes
 *       before compression and encryption, u32 bytes of the stored object, then where it is stored
 *       (a hint, {@link ChunkLocation}): a byte {@code 0} loose, or {@code 1} in a pack followed by
 *       the 16-byte pack id and the u64 offset in the pack;</li>
 *   <li>{@code 3} end of the open image: u64 size (the sum of its chunks);</li>
 *   <li>{@code 0} end of the index: u32 number of images; nothing may follow.</li>
 * </ul>
 * Reading checks the structure as it goes (no chunk outside an image, sizes add up, bounded
 * lengths, a complete end), so a truncated or altered index is refused; its bytes are also checked
 * against the sha256 in the manifest by whoever fetched it. Version 1 (written before packs) has no
 * locations (its chunks are all loose) and ends each image with its sha256 after the size; it is
 * still read, and never written. Version 2 records no image sha256: the index is authenticated
 * through the manifest, each chunk by its keyed name, and an image is its chunks in this order, so
 * a second hash of every byte on write and on restore would check nothing more.
 */
public final class ChunkIndex {
  /** No chunker makes chunks larger; a larger length in an index is refused. */
  public static final int MAX_CHUNK_BYTES = 16 << 20;
  private static final byte[] MAGIC = "STSI".getBytes(StandardCharsets.US_ASCII);
  private static final int VERSION = 2;
  private static final int VERSION_LOOSE_CHUNKS = 1;
  private static final int LOCATION_LOOSE = 0;
  private static final int LOCATION_PACK = 1;
  private static final int PACK_ID_BYTES = 16;
  private static final int TAG_END = 0;
  private static final int TAG_IMAGE = 1;
  private static final int TAG_CHUNK = 2;
  private static final int TAG_IMAGE_END = 3;
  static final int NAME_BYTES = 32;
  private static final Pattern IMAGE_NAME = Pattern.compile("pages-[0-9]{1,10}\\.img");
  // A chunk that does not compress is stored a little larger (frame headers, the cipher's header and tag).
  static final int MAX_STORED_BYTES = MAX_CHUNK_BYTES + (1 << 16);
  private static final HexFormat HEX = HexFormat.of();

  private ChunkIndex() {}

  /**
   * One chunk of an image: its name (64 hex digits), its length, the length of its stored object, and
   * where that object was stored when the index was written.
   */
  public record ChunkRef(String name, int bytes, int storedBytes, ChunkLocation location) {
    /** A loose chunk (an index of version 1, or a chunk found loose in the store). */
    public ChunkRef(String name, int bytes, int storedBytes) {
      this(name, bytes, storedBytes, ChunkLocation.LOOSE);
    }

    public ChunkRef {
      if (name.length() != 2 * NAME_BYTES || !name.chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
        throw new IllegalArgumentException("a chunk name is 64 lowercase hex digits, got: " + name);
      }
      if (bytes <= 0 || bytes > MAX_CHUNK_BYTES || storedBytes <= 0 || storedBytes > MAX_STORED_BYTES) {
        throw new IllegalArgumentException("chunk " + name + " has " + bytes + " bytes stored in " + storedBytes);
      }
    }
  }

  /** What a reader is told, in the index's order. */
  public interface Visitor {
    default void image(String fileName) throws IOException {}

    void chunk(String fileName, ChunkRef chunk) throws IOException;

    /**
     * {@code sha256}: the whole image's, as version 1 recorded it; null from version 2, which records
     * none ({@link #imageSha256s} says which before the first image).
     */
    default void imageEnd(String fileName, long sizeBytes, String sha256) throws IOException {}

    /** Told once, before any image: whether the index records each image's sha256 (version 1 only). */
    default void imageSha256s(boolean recorded) throws IOException {}
  }

  /** Writes an index as its images are cut; {@link #finish} writes the end, without which no reader accepts it. */
  public static final class Writer {
    private final DataOutputStream out;
    private String openImage;
    private long openImageBytes;
    private int images;

    public Writer(OutputStream out) throws IOException {
      this.out = new DataOutputStream(out);
      this.out.write(MAGIC);
      this.out.writeByte(VERSION);
    }

    public void startImage(String fileName) throws IOException {
      if (openImage != null) {
        throw new IllegalStateException("image " + openImage + " is still open");
      }
      requireImageName(fileName);
      byte[] name = fileName.getBytes(StandardCharsets.UTF_8);
      out.writeByte(TAG_IMAGE);
      out.writeShort(name.length);
      out.write(name);
      openImage = fileName;
      openImageBytes = 0;
    }

    public void chunk(ChunkRef chunk) throws IOException {
      if (openImage == null) {
        throw new IllegalStateException("a chunk belongs to an image, and none is open");
      }
      out.writeByte(TAG_CHUNK);
      out.write(HEX.parseHex(chunk.name()));
      out.writeInt(chunk.bytes());
      out.writeInt(chunk.storedBytes());
      if (chunk.location().loose()) {
        out.writeByte(LOCATION_LOOSE);
      } else {
        out.writeByte(LOCATION_PACK);
        out.write(HEX.parseHex(chunk.location().packId()));
        out.writeLong(chunk.location().offset());
      }
      openImageBytes += chunk.bytes();
    }

    public void endImage(long sizeBytes) throws IOException {
      if (openImage == null) {
        throw new IllegalStateException("no image is open");
      }
      if (sizeBytes != openImageBytes) {
        throw new IllegalArgumentException(openImage + " is " + sizeBytes + " bytes but its chunks hold " + openImageBytes);
      }
      out.writeByte(TAG_IMAGE_END);
      out.writeLong(sizeBytes);
      openImage = null;
      images++;
    }

    /** Ends the index and flushes it; the stream stays open. */
    public void finish() throws IOException {
      if (openImage != null) {
        throw new IllegalStateException("image " + openImage + " is still open");
      }
      out.writeByte(TAG_END);
      out.writeInt(images);
      out.flush();
    }
  }

  /**
   * Reads a whole index from {@code in}, telling {@code visitor} each image and chunk as it comes.
   *
   * @throws ArchiveIntegrityException when the bytes are not a complete, well-formed index
   */
  public static void read(InputStream in, Visitor visitor) throws IOException {
    DataInputStream data = new DataInputStream(in);
    try {
      byte[] magic = data.readNBytes(MAGIC.length);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new ArchiveIntegrityException("not a chunk index (it does not start with STSI)");
      }
      int version = data.readUnsignedByte();
      if (version != VERSION && version != VERSION_LOOSE_CHUNKS) {
        throw new ArchiveIntegrityException("chunk index version " + version + " is not one this build reads ("
            + VERSION_LOOSE_CHUNKS + " or " + VERSION + "); upgrade the agent");
      }
      boolean locations = version == VERSION;
      boolean imageSha256s = version == VERSION_LOOSE_CHUNKS;
      visitor.imageSha256s(imageSha256s);
      byte[] packId = new byte[PACK_ID_BYTES];
      String openImage = null;
      long openImageBytes = 0;
      int images = 0;
      byte[] name = new byte[NAME_BYTES];
      while (true) {
        int tag = data.readUnsignedByte();
        switch (tag) {
          case TAG_IMAGE -> {
            if (openImage != null) {
              throw new ArchiveIntegrityException("image " + openImage + " has no end in the chunk index");
            }
            int length = data.readUnsignedShort();
            openImage = new String(data.readNBytes(length), StandardCharsets.UTF_8);
            if (!IMAGE_NAME.matcher(openImage).matches()) {
              throw new ArchiveIntegrityException("the chunk index names an image " + openImage
                  + ", which is not a CRIU pages image");
            }
            openImageBytes = 0;
            visitor.image(openImage);
          }
          case TAG_CHUNK -> {
            if (openImage == null) {
              throw new ArchiveIntegrityException("the chunk index has a chunk outside any image");
            }
            data.readFully(name);
            ChunkRef chunk;
            try {
              String chunkName = HEX.formatHex(name);
              int bytes = data.readInt();
              int storedBytes = data.readInt();
              chunk = new ChunkRef(chunkName, bytes, storedBytes, locations ? readLocation(data, packId) : ChunkLocation.LOOSE);
            } catch (IllegalArgumentException e) {
              throw new ArchiveIntegrityException("the chunk index is not valid: " + e.getMessage());
            }
            openImageBytes += chunk.bytes();
            visitor.chunk(openImage, chunk);
          }
          case TAG_IMAGE_END -> {
            if (openImage == null) {
              throw new ArchiveIntegrityException("the chunk index ends an image it never started");
            }
            long size = data.readLong();
            String sha256 = null;
            if (imageSha256s) {
              data.readFully(name);
              sha256 = HEX.formatHex(name);
            }
            if (size != openImageBytes) {
              throw new ArchiveIntegrityException(openImage + " is " + size + " bytes by the chunk index, but its chunks"
                  + " hold " + openImageBytes);
            }
            visitor.imageEnd(openImage, size, sha256);
            openImage = null;
            images++;
          }
          case TAG_END -> {
            int count = data.readInt();
            if (openImage != null || count != images) {
              throw new ArchiveIntegrityException("the chunk index ends with " + count + " images after " + images
                  + (openImage != null ? " and " + openImage + " open" : ""));
            }
            if (data.read() != -1) {
              throw new ArchiveIntegrityException("the chunk index has bytes after its end");
            }
            return;
          }
          default -> throw new ArchiveIntegrityException("the chunk index has an unknown record " + tag);
        }
      }
    } catch (EOFException e) {
      throw new ArchiveIntegrityException("the chunk index is truncated", e);
    }
  }

  private static ChunkLocation readLocation(DataInputStream data, byte[] packId) throws IOException {
    int kind = data.readUnsignedByte();
    return switch (kind) {
      case LOCATION_LOOSE -> ChunkLocation.LOOSE;
      case LOCATION_PACK -> {
        data.readFully(packId);
        yield ChunkLocation.inPack(HEX.formatHex(packId), data.readLong());
      }
      default -> throw new IllegalArgumentException("a chunk's location is of an unknown kind " + kind);
    };
  }

  private static void requireImageName(String fileName) {
    if (!IMAGE_NAME.matcher(fileName).matches()) {
      throw new IllegalArgumentException("only CRIU pages images (pages-<n>.img) are chunked, not " + fileName);
    }
  }
}
