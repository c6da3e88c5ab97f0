package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.work.WorkProgress;
import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.ProgressStatus;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The progresses of one Checkpoint or Restore as a watch of the API server sees them, as {@code
 * kubectl get -w} shows them: each different one once, with when it arrived.
 */
public final class ProgressSeen {
  /** A progress the API server sent, and when the watch got it. */
  private record Seen(ProgressStatus progress, long nanos) {}

  private final List<Seen> seen = new CopyOnWriteArrayList<>();

  /** Records what the watch it is given to sees. */
  public <R extends CustomResource<?, ? extends AgentWorkStatus>> Watcher<R> watcher() {
    return new Watcher<>() {
      @Override
      public void eventReceived(Action action, R resource) {
        ProgressStatus progress = resource.getStatus() == null ? null : resource.getStatus().progress;
        if (progress != null && (seen.isEmpty() || !progress.sameAs(seen.get(seen.size() - 1).progress()))) {
          seen.add(new Seen(progress, System.nanoTime()));
        }
      }

      @Override
      public void onClose(WatcherException cause) {}
    };
  }

  public List<ProgressStatus> progresses() {
    return seen.stream().map(Seen::progress).toList();
  }

  /**
   * Of the progresses that expected some bytes: at least three different ones while the work ran
   * (fewer for short work, {@link #movesDue}), each further than the one before (in bytes and in the
   * PROGRESS column, which stays at 99% at most), each expecting at least {@code expectedAtLeast} bytes; no more of them than one per two
   * seconds of the work (with two to spare, for the first and the last); and the work's end at 100%.
   */
  public void assertMovedForward(AgentWorkStatus ended, long expectedAtLeast) {
    // Before a pod's runtime has written its archive, nothing is expected yet (and no percent shown).
    List<ProgressStatus> running = progresses().stream().filter(p -> p.bytesExpected != null)
        .filter(p -> !"100%".equals(p.percent)).toList();
    System.out.printf("progress seen: %s%n", progresses().stream().map(p -> p.step + " " + p.percent + " " + p.bytesDone
        + "/" + p.bytesExpected).toList());
    int movesDue = movesDue(ended);
    assertThat(running.stream().map(p -> p.bytesDone).distinct()).as("different bytes done in %s", workTime(ended))
        .hasSizeGreaterThanOrEqualTo(movesDue);
    assertThat(running).extracting(p -> p.bytesDone).isSorted();
    assertThat(running).extracting(p -> p.percent).as("the PROGRESS column").doesNotContainNull()
        .allMatch(p -> Integer.parseInt(p.replace("%", "")) <= 99);
    assertThat(running.stream().map(p -> p.percent).distinct()).as("the PROGRESS column")
        .hasSizeGreaterThanOrEqualTo(movesDue);
    assertThat(running).allSatisfy(p -> assertThat(p.bytesExpected).isGreaterThanOrEqualTo(expectedAtLeast));
    long ranSeconds = Duration.ofNanos(seen.get(seen.size() - 1).nanos() - seen.get(0).nanos()).toSeconds();
    assertThat(running.size()).as("status writes of the progress over %ds", ranSeconds)
        .isLessThanOrEqualTo((int) (ranSeconds / 2) + 2);
    assertThat(ended.progress.percent).isEqualTo("100%");
  }

  /**
   * The agent writes the progress once per {@link WorkProgress#INTERVAL}, the first an interval after
   * the work starts, so work of t seconds shows about t / interval progresses before its end: three
   * of them are asked of long work, fewer of work too short for them (a deduplicated 1 GiB restore on
   * a quiet machine takes about 3 s), never a pass for work that showed none it was due.
   */
  private static int movesDue(AgentWorkStatus ended) {
    long intervals = workTime(ended).toMillis() / WorkProgress.INTERVAL.toMillis();
    return (int) Math.max(0, Math.min(3, intervals - 1));
  }

  private static Duration workTime(AgentWorkStatus ended) {
    return Duration.between(Instant.parse(ended.startTime), Instant.parse(ended.completionTime));
  }
}
