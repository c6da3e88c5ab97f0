package dev.stasis.criu;

import static dev.stasis.criu.PagemapImages.PE_PARENT;
import static dev.stasis.criu.PagemapImages.PE_PRESENT;
import static dev.stasis.criu.PagemapImages.message;
import static dev.stasis.criu.PagemapImages.pagemap;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.criu.DumpContents.MemoryRun;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A pagemap read while CRIU appends to it: whole entries only, wherever its buffer was flushed. */
class GrowingPagemapTest {
  private static final long PAGE = 4096;
  @TempDir
  Path dir;

  private final byte[] image = pagemap(message(1, 7), // pagemap_head: pages_id
      message(1, 0x400000, 2, 2, 4, PE_PRESENT),
      message(1, 0x500000, 2, 3, 4, PE_PARENT), // in a parent dump: not in this pages image
      message(1, 0x7f0000000000L, 5, 300, 4, PE_PRESENT)); // nr_pages as field 5, as CRIU 4 writes it

  @Test
  void entriesAreReadOnlyOnceWholeHoweverTheFileGrows() throws IOException {
    Path file = dir.resolve("pagemap-42.img");
    try (GrowingPagemap pagemap = new GrowingPagemap(file)) {
      assertThat(pagemap.read()).isEmpty(); // CRIU has not created it yet
      Files.write(file, new byte[0]);
      // Flushes anywhere: inside the magic, a length prefix, a message.
      List<MemoryRun> runs = new ArrayList<>();
      int written = 0;
      for (int step : new int[] {3, 6, 2, 5, 1, 9, 4}) {
        int to = Math.min(image.length, written + step);
        Files.write(file, Arrays.copyOfRange(image, written, to), StandardOpenOption.APPEND);
        written = to;
        runs.addAll(pagemap.read());
        assertThat(runs).as("after %d bytes", written).isEqualTo(whole(Arrays.copyOf(image, written)));
      }
      Files.write(file, Arrays.copyOfRange(image, written, image.length), StandardOpenOption.APPEND);
      runs.addAll(pagemap.read());
      pagemap.requireWhole();

      assertThat(runs).containsExactly(new MemoryRun(0x400000, 2 * PAGE), new MemoryRun(0x7f0000000000L, 300 * PAGE));
      assertThat(pagemap.pagesFile()).contains(dir.resolve("pages-7.img"));
    }
  }

  @Test
  void aPagemapThatEndsInsideAnEntryOnceCriuIsDoneIsRefused() throws IOException {
    Path file = dir.resolve("pagemap-42.img");
    Files.write(file, Arrays.copyOf(image, image.length - 2)); // CRIU failed before flushing the rest
    try (GrowingPagemap pagemap = new GrowingPagemap(file)) {
      assertThat(pagemap.read()).containsExactly(new MemoryRun(0x400000, 2 * PAGE));

      assertThatThrownBy(pagemap::requireWhole).isInstanceOf(IOException.class)
          .hasMessageContaining("pagemap-42.img ends inside an entry");
    }
  }

  @Test
  void whatIsNotAPagemapIsRefused() throws IOException {
    Path file = dir.resolve("pagemap-42.img");
    Files.write(file, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
    try (GrowingPagemap pagemap = new GrowingPagemap(file)) {
      assertThatThrownBy(pagemap::read).hasMessageContaining("does not start with the magic");
    }
    byte[] hugeEntry = Arrays.copyOf(pagemap(), 12);
    hugeEntry[10] = 0x10; // a length of 1 MiB
    Files.write(file, hugeEntry);
    try (GrowingPagemap pagemap = new GrowingPagemap(file)) {
      assertThatThrownBy(pagemap::read).hasMessageContaining("not that of a pagemap entry");
    }
  }

  /** What DumpContents reads from the whole entries of {@code prefix}, as it reads a pagemap CRIU completed. */
  private List<MemoryRun> whole(byte[] prefix) throws IOException {
    int end = 8;
    int messages = 0;
    while (end + 4 <= prefix.length && end + 4 + prefix[end] <= prefix.length) { // these messages are < 128 bytes
      end += 4 + prefix[end];
      messages++;
    }
    if (messages < 2) {
      return List.of(); // no entry after the head yet
    }
    Path complete = Files.createDirectories(dir.resolve("whole-" + prefix.length));
    Files.write(complete.resolve("pagemap-1.img"), Arrays.copyOf(prefix, end));
    return DumpContents.pagesImage(complete, 1).runs();
  }
}
