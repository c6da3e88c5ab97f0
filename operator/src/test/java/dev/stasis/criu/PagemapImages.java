package dev.stasis.criu;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Pagemap images laid out as CRIU writes them (magics, then length-prefixed protobuf messages), for tests. */
public final class PagemapImages {
  /** pagemap.proto flags: the pages are in a parent dump, the pages are in this dump's pages image. */
  public static final long PE_PARENT = 1;
  public static final long PE_PRESENT = 4;
  private static final int PAGE_BYTES = 4096;

  private PagemapImages() {}

  /**
   * Writes a process's dump of one run of memory at {@code address}: {@code pagemap-<pid>.img}
   * naming {@code pages-<pagesId>.img}, which holds {@code pages} (whole pages).
   */
  public static void writeProcess(Path dir, int pid, int pagesId, long address, byte[] pages) throws IOException {
    if (pages.length % PAGE_BYTES != 0) {
      throw new IllegalArgumentException("memory is dumped in whole pages, not " + pages.length + " bytes");
    }
    Files.write(dir.resolve("pagemap-" + pid + ".img"), pagemap(message(1, pagesId),
        message(1, address, 2, pages.length / PAGE_BYTES, 4, PE_PRESENT)));
    Files.write(dir.resolve("pages-" + pagesId + ".img"), pages);
  }

  /** A pagemap image of these messages: the head (pages_id) first, then one per entry. */
  public static byte[] pagemap(byte[]... messages) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(littleEndian(ImageFile.IMG_COMMON_MAGIC));
    out.writeBytes(littleEndian(ImageFile.PAGEMAP_MAGIC));
    for (byte[] message : messages) {
      out.writeBytes(littleEndian(message.length));
      out.writeBytes(message);
    }
    return out.toByteArray();
  }

  /** A protobuf message of varint fields: field number, value, field number, value, … */
  public static byte[] message(long... fieldsAndValues) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < fieldsAndValues.length; i += 2) {
      varint(out, fieldsAndValues[i] << 3); // wire type 0
      varint(out, fieldsAndValues[i + 1]);
    }
    return out.toByteArray();
  }

  private static byte[] littleEndian(int value) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
  }

  private static void varint(ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) ((value & 0x7f) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }
}
