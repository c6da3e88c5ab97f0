package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class DumpStatsTest {
  /** A stats-dump image written by CRIU 4.2.1 on this kind of machine (dump of the counter workload). */
  private static byte[] realImage() throws IOException {
    try (InputStream in = DumpStatsTest.class.getResourceAsStream("/criu/stats-dump")) {
      return in.readAllBytes();
    }
  }

  @Test
  void readsCriusOwnDumpStatistics() throws IOException {
    DumpStats stats = DumpStats.parse(realImage());
    assertThat(stats.freezingTimeMicros()).isEqualTo(230);
    assertThat(stats.frozenTimeMicros()).isEqualTo(7657);
    assertThat(stats.memoryDumpTimeMicros()).isEqualTo(572);
    assertThat(stats.memoryWriteTimeMicros()).isEqualTo(131);
    assertThat(stats.pagesScanned()).isEqualTo(40);
    assertThat(stats.pagesWritten()).isEqualTo(27);
  }

  @Test
  void truncatedImagesFailWithAClearError() throws IOException {
    byte[] image = realImage();
    for (int length = 0; length < image.length; length++) {
      byte[] cut = Arrays.copyOf(image, length);
      assertThatThrownBy(() -> DumpStats.parse(cut)).isInstanceOf(IOException.class)
          .hasMessageContaining("stats image");
    }
  }
}
