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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where a pages image's bytes belong, read from a pagemap image laid out as CRIU writes one. */
class DumpContentsTest {
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
}
