package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.stasis.cli.Main;
import dev.stasis.testing.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Real CRIU holding a dumped tree frozen in its post-dump action until told what to do with it. */
class PostDumpHookIT {
  static final Duration WAIT = Duration.ofSeconds(30);
  final Criu criu = new Criu(Main.criuPath(null), Map.of());
  @TempDir Path dir;

  DumpOptions holding(long pid, boolean endTree) {
    return new DumpOptions((int) pid, dir.resolve("images"), dir.resolve("work"), endTree, true, TreeOptions.PLAIN,
        Duration.ofSeconds(60));
  }

  @Test
  void theTreeStaysFrozenUntilToldAndThenGoesOnAsIfNeverTouched() throws Exception {
    Path count = dir.resolve("count");
    try (var counter = Workloads.startInPidNamespace("counter", count.toString())) {
      await().atMost(WAIT).until(() -> count(count) >= 3);
      try (RunningDump dump = criu.startDump(holding(counter.pid(), true))) {
        dump.awaitFrozen();
        long frozenAt = count(count);
        await("frozen").during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3)).until(() -> count(count) == frozenAt);

        dump.decide(PostDumpHook.Decision.RESUME);
        assertThatThrownBy(dump::awaitExit).isInstanceOfSatisfying(CriuException.class,
            e -> assertThat(e.reason()).isEqualTo("CriuDumpFailed"));
        await("counting again").atMost(WAIT).until(() -> count(count) > frozenAt + 2);
      }
    }
  }

  @Test
  void toldToProceedCriuEndsTheTreeItWasToEnd() throws Exception {
    Path count = dir.resolve("count");
    try (var counter = Workloads.startInPidNamespace("counter", count.toString())) {
      await().atMost(WAIT).until(() -> count(count) >= 3);
      try (RunningDump dump = criu.startDump(holding(counter.pid(), true))) {
        dump.awaitFrozen();
        assertThat(Workloads.isAlive(counter.pid())).as("held, not ended, until told").isTrue();
        dump.decide(PostDumpHook.Decision.PROCEED);
        assertThat(dump.awaitExit().stats().frozenTimeMicros()).isPositive();
      }
      await().atMost(WAIT).until(() -> !Workloads.isAlive(counter.pid()));
    }
  }

  /** CRIU fails before its post-dump action runs (a TCP connection without --tcp-established): said at once. */
  @Test
  void aDumpThatFailsBeforeItsHookIsReportedAtOnceWithCriusReason() throws Exception {
    Path out = dir.resolve("pair");
    try (var pair = Workloads.startInPidNamespace("tcppair", out.toString())) {
      await().atMost(WAIT).until(() -> count(out) >= 2);
      try (RunningDump dump = criu.startDump(holding(pair.pid(), false))) {
        assertTimeoutPreemptively(WAIT, () -> assertThatThrownBy(dump::awaitFrozen)
            .isInstanceOfSatisfying(CriuException.class, e -> {
              assertThat(e.reason()).isEqualTo("CriuDumpFailed");
              assertThat(e.getMessage()).contains("Connected TCP socket");
            }));
      }
      long now = count(out);
      await("the pair goes on").atMost(WAIT).until(() -> count(out) > now);
    }
  }

  static long count(Path file) {
    try {
      String text = Files.readString(file).trim();
      return text.isEmpty() ? -1 : Long.parseLong(text);
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }
}
