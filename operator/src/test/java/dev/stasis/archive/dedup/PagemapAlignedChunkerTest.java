package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.dedup.PagemapAlignedChunker.MappedRun;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Boundaries at pagemap entries and at block-aligned addresses: every byte once, unmoved by other memory. */
class PagemapAlignedChunkerTest {
  private static final int PAGE = 4096;
  private static final int BLOCK = 64 * 1024;

  @Test
  void cutsAtEachRunAndAtEveryAddressThatIsAMultipleOfTheBlock() throws IOException {
    // 3 pages ending 2 pages into a block; 40 pages starting mid-block; one page.
    List<MappedRun> runs = List.of(new MappedRun(0x10000 - PAGE, 3L * PAGE),
        new MappedRun(0x7f0000005000L, 40L * PAGE), new MappedRun(0x7fff0000L, PAGE));
    byte[] image = Chunks.random(44 * PAGE, 1);

    Chunks chunks = Chunks.cut(new PagemapAlignedChunker(runs, BLOCK), image);

    assertThat(chunks.joined()).isEqualTo(image);
    assertThat(chunks.list()).extracting(c -> c.length / PAGE).containsExactly(
        1, 2, // the first run crosses 0x10000
        11, 16, 13, // 0x...5000 to the next block, a whole block, the rest
        1);
  }

  @Test
  void memoryMappedBetweenRunsMovesNoOtherChunk() throws IOException {
    List<MappedRun> runs = List.of(new MappedRun(0x100000000L, 64L * BLOCK), new MappedRun(0x200000000L, 64L * BLOCK));
    byte[] image = Chunks.random(128 * BLOCK, 2);
    List<MappedRun> withNewMemory = new ArrayList<>(runs);
    withNewMemory.add(1, new MappedRun(0x180000000L + 5 * PAGE, 100L * PAGE)); // not block-aligned
    byte[] inserted = Chunks.random(100 * PAGE, 3);

    Chunks before = Chunks.cut(new PagemapAlignedChunker(runs, BLOCK), image);
    Chunks after = Chunks.cut(new PagemapAlignedChunker(withNewMemory, BLOCK),
        Chunks.splice(image, 64 * BLOCK, 0, inserted));

    assertThat(after.newBytesAfter(before)).isEqualTo(inserted.length);
  }

  @Test
  void entriesThatContinueEachOtherAreCutAsOneRun() throws IOException {
    // CRIU splits a long run into entries by how full its pipes were, which other memory can shift.
    List<MappedRun> split = List.of(new MappedRun(0x100000000L, 3L * PAGE), new MappedRun(0x100003000L, 29L * PAGE),
        new MappedRun(0x100020000L, 32L * PAGE));
    byte[] image = Chunks.random(64 * PAGE, 6);

    Chunks chunks = Chunks.cut(new PagemapAlignedChunker(split, BLOCK), image);

    assertThat(chunks.list()).extracting(c -> c.length).containsExactly(BLOCK, BLOCK, BLOCK, BLOCK);
    assertThat(chunks.joined()).isEqualTo(image);
  }

  @Test
  void aRewrittenPageChangesOnlyItsBlock() throws IOException {
    List<MappedRun> runs = List.of(new MappedRun(0x100000000L, 64L * BLOCK));
    byte[] image = Chunks.random(64 * BLOCK, 4);
    byte[] rewritten = image.clone();
    System.arraycopy(Chunks.random(PAGE, 5), 0, rewritten, 10 * BLOCK + 3 * PAGE, PAGE);

    PagemapAlignedChunker chunker = new PagemapAlignedChunker(runs, BLOCK);

    assertThat(Chunks.cut(chunker, rewritten).newBytesAfter(Chunks.cut(chunker, image))).isEqualTo(BLOCK);
  }

  @Test
  void cuttingEntryByEntryAsCriuWritesGivesTheBoundariesOfTheWholeImage() throws IOException {
    // Entries that continue one another across blocks, a gap, entries ending mid-block, one page.
    List<MappedRun> entries = List.of(new MappedRun(0x100000000L, 3L * PAGE), new MappedRun(0x100003000L, 29L * PAGE),
        new MappedRun(0x100020000L, 5L * PAGE), new MappedRun(0x100025000L, 40L * PAGE),
        new MappedRun(0x200000000L + 7 * PAGE, 2L * PAGE), new MappedRun(0x200009000L, 20L * PAGE),
        new MappedRun(0x7fff0000L, PAGE));
    byte[] image = Chunks.random(100 * PAGE, 7);
    Chunks whole = Chunks.cut(new PagemapAlignedChunker(entries, BLOCK), image);

    List<byte[]> entryByEntry = new ArrayList<>();
    var cutting = new PagemapAlignedChunker.Cutting(BLOCK,
        (bytes, offset, length) -> entryByEntry.add(Arrays.copyOfRange(bytes, offset, offset + length)));
    ByteArrayInputStream pages = new ByteArrayInputStream(image);
    for (MappedRun entry : entries) {
      cutting.run(entry, pages);
    }
    int beforeFinish = entryByEntry.size();
    cutting.finish();

    assertThat(new Chunks(entryByEntry).list()).usingElementComparator(Arrays::compare)
        .containsExactlyElementsOf(whole.list());
    assertThat(beforeFinish).as("only the last chunk waits for the image's end").isEqualTo(whole.list().size() - 1);
    assertThat(cutting.offset()).isEqualTo(image.length);
  }

  @Test
  void anImageThatDisagreesWithItsPagemapIsRefused() {
    PagemapAlignedChunker chunker = new PagemapAlignedChunker(List.of(new MappedRun(0, 4L * PAGE)), BLOCK);

    assertThatThrownBy(() -> chunker.cut(new ByteArrayInputStream(new byte[3 * PAGE]), (b, o, l) -> { }))
        .isInstanceOf(EOFException.class).hasMessageContaining("ends at byte 12288");
    assertThatThrownBy(() -> chunker.cut(new ByteArrayInputStream(new byte[5 * PAGE]), (b, o, l) -> { }))
        .isInstanceOf(IOException.class).hasMessageContaining("longer than the 16384 bytes its pagemap lists");
  }

  @Test
  void runsAndBlocksThatAreNotWholePagesAreRefused() {
    assertThatThrownBy(() -> new MappedRun(100, PAGE)).hasMessageContaining("page-aligned");
    assertThatThrownBy(() -> new PagemapAlignedChunker(List.of(), 3 * PAGE)).hasMessageContaining("power of two");
  }
}
