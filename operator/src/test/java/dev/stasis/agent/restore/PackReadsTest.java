package dev.stasis.agent.restore;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.restore.PackReads.Read;
import dev.stasis.agent.restore.PackReads.Slot;
import dev.stasis.archive.dedup.ChunkIndex.ChunkRef;
import dev.stasis.archive.dedup.ChunkLocation;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PackReadsTest {
  private static final String OLD_PACK = "0a".repeat(16);
  private static final String NEW_PACK = "0b".repeat(16);
  private static final int CHUNK = 131_072;
  private static final int STORED = CHUNK + 1;

  @Test
  void aPackWhoseChunksTheImageNeedsBetweenAnotherPacksIsReadOnceAcrossTheChunksItDoesNotNeed() {
    // The 2nd checkpoint of an image of six chunks whose 3rd and 4th were rewritten: the old pack
    // holds chunks 0-5, the new pack the two rewritten ones.
    List<Slot> image = slots(in(OLD_PACK, 0), in(OLD_PACK, 1), in(NEW_PACK, 0), in(NEW_PACK, 1), in(OLD_PACK, 4),
        in(OLD_PACK, 5));

    List<Read> reads = PackReads.plan(image);

    assertThat(reads).hasSize(2);
    Read old = reads.get(0);
    assertThat(old.packId()).isEqualTo(OLD_PACK);
    assertThat(old.offset()).isZero();
    assertThat(old.length()).as("chunks 0-5 of the old pack: 2 and 3 passed over, not a request more")
        .isEqualTo(6L * STORED);
    assertThat(old.slots()).extracting(Slot::imageOffset).containsExactly(0L, 1L * CHUNK, 4L * CHUNK, 5L * CHUNK);
    Read rewritten = reads.get(1);
    assertThat(rewritten.packId()).isEqualTo(NEW_PACK);
    assertThat(rewritten.length()).isEqualTo(2L * STORED);
    assertThat(rewritten.slots()).extracting(Slot::imageOffset).containsExactly(2L * CHUNK, 3L * CHUNK);
  }

  @Test
  void chunksNeededInAnotherOrderThanTheirPackHoldsThemAreReadInThePacksOrder() {
    List<Read> reads = PackReads.plan(slots(in(NEW_PACK, 3), in(NEW_PACK, 0), in(NEW_PACK, 2)));

    assertThat(reads).singleElement().satisfies(read -> {
      assertThat(read.offset()).isZero();
      assertThat(read.length()).isEqualTo(4L * STORED);
      assertThat(read.slots()).extracting(slot -> slot.chunk().location().offset())
          .containsExactly(0L, 2L * STORED, 3L * STORED);
      assertThat(read.slots()).extracting(Slot::imageOffset).containsExactly(1L * CHUNK, 2L * CHUNK, 0L);
    });
  }

  @Test
  void aGapLargerThanTheLimitStartsAnotherRequestAndOneAtTheLimitDoesNot() {
    int atLimit = PackReads.MAX_GAP / STORED; // whole chunks passed over, at most MAX_GAP bytes
    long farther = (long) PackReads.MAX_GAP + STORED; // a chunk that starts one chunk past the limit

    List<Read> reads = PackReads.plan(slots(in(OLD_PACK, 0), in(OLD_PACK, 1 + atLimit),
        new ChunkRef(name(9), CHUNK, STORED, ChunkLocation.inPack(OLD_PACK, (2L + atLimit) * STORED + farther))));

    assertThat(reads).hasSize(2);
    assertThat(reads.get(0).slots()).hasSize(2);
    assertThat(reads.get(0).length()).isEqualTo((2L + atLimit) * STORED);
    assertThat(reads.get(1).offset()).isEqualTo((2L + atLimit) * STORED + farther);
    assertThat(reads.get(1).slots()).hasSize(1);
  }

  @Test
  void aChunkTheImageNeedsTwiceIsReadOnceAndWrittenToBothPlaces() {
    ChunkRef zeros = in(OLD_PACK, 7);

    List<Read> reads = PackReads.plan(slots(zeros, in(OLD_PACK, 8), zeros));

    assertThat(reads).singleElement().satisfies(read -> {
      assertThat(read.length()).isEqualTo(2L * STORED);
      assertThat(read.slots()).extracting(Slot::imageOffset).containsExactly(0L, 2L * CHUNK, 1L * CHUNK);
    });
  }

  @Test
  void looseChunksAreOneRequestEachAndObjectsThatOverlapAreReadSeparately() {
    ChunkRef loose = new ChunkRef(name(1), CHUNK, STORED);
    // Only an altered index lists objects that overlap; each is read and checked against its name.
    ChunkRef overlapping = new ChunkRef(name(2), CHUNK, STORED, ChunkLocation.inPack(OLD_PACK, STORED / 2));

    List<Read> reads = PackReads.plan(slots(loose, in(OLD_PACK, 0), overlapping, loose));

    assertThat(reads).extracting(Read::packId).containsExactly(null, null, OLD_PACK, OLD_PACK);
    assertThat(reads).extracting(Read::offset).containsExactly(0L, 0L, 0L, (long) STORED / 2);
    assertThat(reads).allSatisfy(read -> assertThat(read.length()).isEqualTo(STORED));
  }

  /** The chunk stored at position {@code n} of a pack of raw chunks. */
  private static ChunkRef in(String packId, int n) {
    return new ChunkRef(name(packId.hashCode() * 31 + n), CHUNK, STORED, ChunkLocation.inPack(packId, (long) n * STORED));
  }

  private static String name(int n) {
    return String.format("%064x", n & 0xffffffffL);
  }

  /** The chunks of one image, in order. */
  private static List<Slot> slots(ChunkRef... chunks) {
    List<Slot> slots = new ArrayList<>();
    long at = 0;
    for (ChunkRef chunk : chunks) {
      slots.add(new Slot(chunk, at));
      at += chunk.bytes();
    }
    return slots;
  }
}
