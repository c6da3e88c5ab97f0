package dev.stasis.operator.schedule;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * What a schedule has to do at {@code now}, worked out only from the last run it handled (taken or
 * skipped) and the clock, never from memory: that is what makes runs exact across operator
 * restarts. As with Kubernetes CronJobs, only the latest of several missed runs is taken, and not
 * at all once it is more than the starting deadline late.
 *
 * @param due the run to handle now, if one fell due since the last handled one
 * @param tooLate whether {@code due} missed its starting deadline and is to be skipped
 * @param next the run after {@code due}, if the schedule fires again
 */
public record RunPlan(Optional<Instant> due, boolean tooLate, Optional<Instant> next) {

  public static RunPlan at(RunSchedule schedule, Instant lastHandled, Instant now, Duration startingDeadline) {
    Optional<Instant> due = schedule.latestDue(lastHandled, now);
    boolean tooLate = due.isPresent() && startingDeadline != null && due.get().plus(startingDeadline).isBefore(now);
    return new RunPlan(due, tooLate, schedule.nextAfter(due.orElse(lastHandled)));
  }
}
