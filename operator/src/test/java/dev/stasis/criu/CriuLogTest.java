package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CriuLogTest {
  @TempDir Path dir;

  /**
   * A dump log at -v4 of a large process runs to gigabytes (here 8 GiB, sparse, as one line of NULs
   * between CRIU's first error and its last words): the cause and the tail are found at once,
   * without reading the log whole.
   */
  @Test
  void aHugeLogIsScannedNotReadWhole() throws Exception {
    Path file = dir.resolve("dump.log");
    Files.writeString(file, "(00.000100) Error (criu/util.c:642): rlimit: Can't setup RLIMIT_NOFILE\n"
        + "(00.012345) Error (criu/cr-dump.c:1234): A session leader of 42(1) is outside of its pid namespace\n");
    try (RandomAccessFile log = new RandomAccessFile(file.toFile(), "rw")) {
      log.setLength(8L << 30);
      log.seek(log.length());
      log.write(("\n(99.000001) Unlock network\n(99.000002) Error (criu/cr-dump.c:2233): Dumping FAILED.\n")
          .getBytes(StandardCharsets.UTF_8));
    }
    CriuLog criuLog = new CriuLog(file);

    assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
      assertThat(criuLog.firstError()).contains("A session leader of 42(1) is outside of its pid namespace");
      assertThat(criuLog.tail()).endsWith("(99.000001) Unlock network\n(99.000002) Error (criu/cr-dump.c:2233):"
          + " Dumping FAILED.").hasSizeLessThanOrEqualTo(4000);
    });
  }

  @Test
  void theTailIsTheLastTwentyLines() throws Exception {
    StringBuilder text = new StringBuilder();
    for (int i = 1; i <= 50; i++) {
      text.append("(00.0000").append(i).append(") line ").append(i).append('\n');
    }
    Path file = Files.writeString(dir.resolve("restore.log"), text);
    CriuLog criuLog = new CriuLog(file);

    assertThat(criuLog.tail().split("\n")).hasSize(20).startsWith("(00.000031) line 31").endsWith("(00.000050) line 50");
    assertThat(criuLog.contains("line 7")).isTrue();
    assertThat(criuLog.contains("Restore finished successfully")).isFalse();
    assertThat(new CriuLog(dir.resolve("missing.log")).tail()).isEmpty();
    assertThat(new CriuLog(dir.resolve("missing.log")).isEmpty()).isTrue();
  }
}
