package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

/** Content-defined boundaries: every byte once, sizes in bounds, and back in step after an edit. */
class ContentDefinedChunkerTest {
  private static final int AVERAGE = 64 * 1024;
  /**
   * New bytes an edit may cost besides the bytes inserted: usually a chunk or two, but the chunk
   * sizes normalized chunking prefers near a boundary can keep the two cuttings apart for several
   * (up to ~11 averages over 12 random 16 MiB images), and no more than 1 MiB would be a regression.
   */
  private static final long AFTERMATH = 16L * AVERAGE;
  private final ContentDefinedChunker chunker = ContentDefinedChunker.ofAverage(AVERAGE);

  @Test
  void everyByteIsInExactlyOneChunkInOrder() throws IOException {
    byte[] image = Chunks.random(8 * 1024 * 1024 + 12_345, 1);

    Chunks chunks = Chunks.cut(chunker, image);

    assertThat(chunks.joined()).isEqualTo(image);
    assertThat(chunks.list().subList(0, chunks.list().size() - 1))
        .allSatisfy(c -> assertThat(c.length).isBetween(AVERAGE / 4, AVERAGE * 4));
    assertThat(chunks.list().get(chunks.list().size() - 1).length).isBetween(1, AVERAGE * 4);
    // Normalized chunking keeps the mean near the average asked for.
    assertThat(image.length / chunks.list().size()).isBetween(AVERAGE / 2, AVERAGE * 2);
  }

  @Test
  void sameBytesCutTheSameWay() throws IOException {
    byte[] image = Chunks.random(2 * 1024 * 1024, 2);

    assertThat(Chunks.cut(chunker, image).newBytesAfter(Chunks.cut(chunker, image.clone()))).isZero();
  }

  @Test
  void anInsertionInTheMiddleChangesOnlyTheChunksAroundIt() throws IOException {
    byte[] image = Chunks.random(16 * 1024 * 1024, 3);
    byte[] inserted = Chunks.random(1_000_003, 4); // not a multiple of anything the chunker knows

    Chunks before = Chunks.cut(chunker, image);
    Chunks after = Chunks.cut(chunker, Chunks.splice(image, image.length / 2 + 777, 0, inserted));

    assertThat(after.newBytesAfter(before)).isBetween((long) inserted.length, inserted.length + AFTERMATH);
  }

  @Test
  void aRemovalInTheMiddleChangesOnlyTheChunksAroundIt() throws IOException {
    byte[] image = Chunks.random(16 * 1024 * 1024, 5);

    Chunks before = Chunks.cut(chunker, image);
    Chunks after = Chunks.cut(chunker, Chunks.splice(image, image.length / 2 + 777, 1_000_003, new byte[0]));

    assertThat(after.newBytesAfter(before)).isBetween(1L, AFTERMATH);
  }

  @Test
  void anImageShorterThanTheMinimumIsOneChunk() throws IOException {
    byte[] image = Chunks.random(100, 6);

    assertThat(Chunks.cut(chunker, image).list()).singleElement().isEqualTo(image);
    assertThat(Chunks.cut(chunker, new byte[0]).list()).isEmpty();
  }

  @Test
  void sizesThatCannotWorkAreRefused() {
    assertThatThrownBy(() -> new ContentDefinedChunker(16 * 1024, 60_000, 256 * 1024))
        .hasMessageContaining("power of two");
    assertThatThrownBy(() -> new ContentDefinedChunker(64 * 1024, 64 * 1024, 256 * 1024))
        .hasMessageContaining("64 <= min < average < max");
  }
}
