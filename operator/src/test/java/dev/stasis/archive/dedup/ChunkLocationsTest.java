package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ChunkLocationsTest {
  private static final String PACK = "5e".repeat(16);
  private static final String OTHER_PACK = "6f".repeat(16);

  @Test
  void aRestoreFindsWhereAChunkIsNowWithoutItCountingAsReferredTo() {
    ChunkLocations locations = new ChunkLocations(2);
    for (int n = 0; n < 100; n++) { // grows past the two it expected
      assertThat(locations.add(name(n), ChunkLocation.inPack(PACK, n * 1000L), 900 + n)).isTrue();
    }
    assertThat(locations.add(name(7), ChunkLocation.inPack(OTHER_PACK, 0), 5)).as("the first location stays").isFalse();

    ChunkIndex.ChunkRef found = locations.find(name(7), 131_072);

    assertThat(found).isEqualTo(new ChunkIndex.ChunkRef(name(7), 131_072, 907, ChunkLocation.inPack(PACK, 7000)));
    assertThat(locations.find(name(100), 131_072)).isNull();
    assertThat(locations.referenced()).isZero();
    assertThat(locations.refer(name(7), 131_072)).isEqualTo(found);
    assertThat(locations.referenced()).isEqualTo(1);
    assertThat(locations.size()).isEqualTo(100);
  }

  private static String name(int n) {
    return String.format("%064x", n + 1L);
  }
}
