package dev.stasis.operator.schedule;

import java.time.Instant;
import java.time.ZoneId;
import java.util.Optional;

/**
 * When the runs of a CheckpointSchedule fall due: a 5-field cron expression or a nickname read in
 * a time zone, or {@code @every <duration>}. The syntax is Kubernetes CronJob's (robfig/cron).
 */
public sealed interface RunSchedule permits CronSchedule, EverySchedule {

  /** The first run time strictly after {@code time}; empty when the schedule never fires again. */
  Optional<Instant> nextAfter(Instant time);

  /** The latest run time in {@code (after, now]}; empty when no run fell due in that interval. */
  Optional<Instant> latestDue(Instant after, Instant now);

  /** @throws IllegalArgumentException saying what is wrong with {@code expression} */
  static RunSchedule parse(String expression, ZoneId zone) {
    if (expression == null || expression.isBlank()) {
      throw new IllegalArgumentException("the schedule is empty: write a cron expression such as '0 * * * *',"
          + " a nickname such as @hourly, or @every 10m");
    }
    String trimmed = expression.trim();
    if (trimmed.startsWith(EverySchedule.PREFIX)) {
      return EverySchedule.parse(trimmed);
    }
    return CronSchedule.parse(trimmed, zone);
  }
}
