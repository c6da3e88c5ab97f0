package dev.stasis.agent.work;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.ProgressStatus;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The progress a job reports reaches its status at most once per {@link WorkProgress#INTERVAL}, and
 * not at all while nothing moves: what keeps a long checkpoint visible without flooding the API
 * server. The reporter is called by hand here, on a clock the test sets, as often as a busy
 * scheduler might.
 */
class WorkProgressTest {
  private static final Duration TICK = Duration.ofMillis(250);

  private final TestingClock clock = new TestingClock(Instant.parse("2026-12-05T23:00:00Z"));
  private final List<ProgressStatus> written = new ArrayList<>();
  private final List<Instant> writtenAt = new ArrayList<>();
  private final Map<String, Long> moved = new HashMap<>();
  private boolean takesProgress = true;

  private final WorkProgress progress = new WorkProgress(p -> {
    written.add(p);
    writtenAt.add(clock.now);
    return takesProgress;
  }, (step, bytes) -> moved.merge(step, bytes, Long::sum), clock);

  @Test
  void movingWorkIsWrittenAtMostOncePerIntervalWithGrowingBytes() {
    progress.step(ProgressStatus.UPLOADING, 1000);
    for (int i = 1; i <= 40; i++) { // 10 s of reports every 250 ms, the bytes moving every time
      progress.done(i * 20L);
      clock.now = clock.now.plus(TICK);
      progress.report();
    }
    assertThat(written).hasSize(5);
    for (int i = 1; i < writtenAt.size(); i++) {
      assertThat(Duration.between(writtenAt.get(i - 1), writtenAt.get(i))).isGreaterThanOrEqualTo(WorkProgress.INTERVAL);
    }
    assertThat(written).extracting(p -> p.bytesDone).isSorted().doesNotHaveDuplicates();
    assertThat(written).allSatisfy(p -> {
      assertThat(p.step).isEqualTo("Uploading");
      assertThat(p.bytesExpected).isEqualTo(1000);
      assertThat(p.percent).isEqualTo(p.bytesDone * 100 / 1000 + "%");
    });
  }

  @Test
  void stalledWorkWritesNothingUntilItMovesAgain() {
    progress.step(ProgressStatus.DOWNLOADING, 1000);
    progress.done(100);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(progress.report()).isTrue();
    for (int i = 0; i < 120; i++) { // 30 s without a byte
      clock.now = clock.now.plus(TICK);
      assertThat(progress.report()).isFalse();
    }
    assertThat(written).hasSize(1);

    progress.done(300);
    clock.now = clock.now.plus(TICK);
    assertThat(progress.report()).isTrue();
    assertThat(written).extracting(p -> p.percent).containsExactly("10%", "30%");
  }

  @Test
  void aNewStepIsWrittenEvenWithTheSameBytes() {
    progress.step(ProgressStatus.DOWNLOADING, 1000);
    progress.done(1000);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    progress.report();
    progress.step(ProgressStatus.RESTORING, 1000);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    progress.report();
    assertThat(written).extracting(p -> p.step + " " + p.percent)
        .containsExactly("Downloading 99%", "Restoring 99%"); // 100% only once the work is done
  }

  @Test
  void nothingIsWrittenBeforeTheWorkHasAStep() {
    progress.done(100);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(progress.report()).isFalse();
    assertThat(written).isEmpty();
  }

  @Test
  void workThatMovedOnTakesNoFurtherProgress() {
    progress.step(ProgressStatus.UPLOADING, 1000);
    progress.done(100);
    takesProgress = false; // the checkpoint ended meanwhile
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(progress.report()).isFalse();
    progress.done(200);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(progress.report()).isFalse();
    assertThat(written).hasSize(1);
  }

  @Test
  void aFailedWriteIsTriedAgainWithWhatIsNewAtTheNextInterval() {
    WorkProgress flaky = new WorkProgress(p -> {
      written.add(p);
      if (written.size() == 1) {
        throw new KubernetesClientException("the API server is away");
      }
      return true;
    }, (step, bytes) -> {}, clock);
    flaky.step(ProgressStatus.UPLOADING, 1000);
    flaky.done(100);
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(flaky.report()).isFalse();
    flaky.done(200);
    clock.now = clock.now.plus(TICK);
    assertThat(flaky.report()).isTrue();
    assertThat(written).extracting(p -> p.bytesDone).containsExactly(100L, 200L);
  }

  @Test
  void closedProgressWritesNothingAndTellsTheMetricsEveryByte() throws Exception {
    progress.step(ProgressStatus.DOWNLOADING, 10_000);
    try (InputStream in = progress.counting(new ByteArrayInputStream(new byte[4000]))) {
      assertThat(in.read()).isZero();
      assertThat(in.readAllBytes()).hasSize(3999);
    }
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    progress.report();
    progress.done(4500);
    progress.step(ProgressStatus.RESTORING, 10_000); // before the next report: still the download's bytes
    progress.done(5000);
    progress.close();
    clock.now = clock.now.plus(WorkProgress.INTERVAL);
    assertThat(progress.report()).isFalse();
    assertThat(written).extracting(p -> p.bytesDone).containsExactly(4000L);
    assertThat(moved).containsEntry("Downloading", 4500L).containsEntry("Restoring", 500L);
  }

  @Test
  void percentIsWholeAndStopsAt99UntilTheWorkIsDone() {
    assertThat(ProgressStatus.of("Uploading", 379, 1000, null).percent).isEqualTo("37%");
    ProgressStatus over = ProgressStatus.of("Uploading", 1200, 1000, null);
    assertThat(over.percent).as("more than the estimate").isEqualTo("99%");
    assertThat(over.finished().percent).isEqualTo("100%");
    assertThat(ProgressStatus.of("Dumping", 1200, 0, null).percent).as("nothing expected yet").isNull();
  }
}
