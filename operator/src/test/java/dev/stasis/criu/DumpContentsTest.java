package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.criu.DumpContents.MemoryRun;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where a pages image's bytes belong, read from a pagemap image laid out as CRIU writes one. */
class DumpContentsTest {
  private static final long PE_PARENT = 1;
  private static final long PE_PRESENT = 4;

  @TempDir Path dir;

  @Test
  void thePagesImageHoldsThePresentEntriesThatAreNotInAParentDump() throws IOException {
    Files.write(dir.resolve("pagemap-42.img"), pagemap(
        message(1, 7), // pagemap_head: pages_id
        message(1, 0x400000, 2, 2, 4, PE_PRESENT),
        message(1, 0x600000, 2, 3, 4, PE_PARENT), // pages in the parent dump, not in this image
        message(1, 0x7f0000000000L, 5, 256, 4, PE_PRESENT))); // nr_pages in its 64-bit field

    DumpContents.PagesImage image = DumpContents.pagesImage(dir, 42);

    assertThat(image.file()).isEqualTo(dir.resolve("pages-7.img"));
    assertThat(image.runs()).containsExactly(new MemoryRun(0x400000, 2 * 4096), new MemoryRun(0x7f0000000000L, 256 * 4096));
  }

  /** What a deduplicated checkpoint cuts: each process's pages image with memory in it, not shared memory's. */
  @Test
  void theProcessPagesImagesOfADumpAreThoseWhosePagemapListsMemory() throws IOException {
    Files.write(dir.resolve("pagemap-42.img"), pagemap(message(1, 7), message(1, 0x400000, 2, 2, 4, PE_PRESENT)));
    Files.write(dir.resolve("pagemap-9.img"), pagemap(message(1, 3), message(1, 0x500000, 2, 1, 4, PE_PRESENT)));
    Files.write(dir.resolve("pagemap-43.img"), pagemap(message(1, 8), message(1, 0x600000, 2, 3, 4, PE_PARENT)));
    Files.write(dir.resolve("pagemap-shmem-5.img"), pagemap(message(1, 9), message(1, 0, 2, 1, 4, PE_PRESENT)));

    assertThat(DumpContents.pagesImages(dir)).containsExactly(
        new DumpContents.PagesImage(dir.resolve("pages-3.img"), java.util.List.of(new MemoryRun(0x500000, 4096))),
        new DumpContents.PagesImage(dir.resolve("pages-7.img"), java.util.List.of(new MemoryRun(0x400000, 2 * 4096))));
  }

  @Test
  void aProcessWithoutAPagemapIsAClearError() {
    assertThatThrownBy(() -> DumpContents.pagesImage(dir, 42)).isInstanceOf(IOException.class)
        .hasMessageContaining("pagemap-42.img").hasMessageContaining("lists no memory");
  }

  private static byte[] pagemap(byte[]... messages) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(littleEndian(ImageFile.IMG_COMMON_MAGIC));
    out.writeBytes(littleEndian(ImageFile.PAGEMAP_MAGIC));
    for (byte[] message : messages) {
      out.writeBytes(littleEndian(message.length));
      out.writeBytes(message);
    }
    return out.toByteArray();
  }

  private static byte[] littleEndian(int value) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
  }

  /** A protobuf message of varint fields: field number, value, field number, value, … */
  private static byte[] message(long... fieldsAndValues) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int i = 0; i < fieldsAndValues.length; i += 2) {
      varint(out, fieldsAndValues[i] << 3); // wire type 0
      varint(out, fieldsAndValues[i + 1]);
    }
    return out.toByteArray();
  }

  private static void varint(ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) ((value & 0x7f) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }
}
