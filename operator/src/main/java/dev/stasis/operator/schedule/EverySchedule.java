package dev.stasis.operator.schedule;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * {@code @every <duration>}: runs a fixed period apart, counted from the previous run (or from the
 * schedule's creation), so the runs stay on one grid however late the operator sees them.
 */
public record EverySchedule(Duration period) implements RunSchedule {
  static final String PREFIX = "@every";

  public EverySchedule {
    if (period.compareTo(Duration.ofSeconds(1)) < 0) {
      throw new IllegalArgumentException("@every needs a period of at least 1s");
    }
  }

  static EverySchedule parse(String expression) {
    String duration = expression.substring(PREFIX.length()).trim();
    if (duration.isEmpty() || expression.charAt(PREFIX.length()) != ' ') {
      throw new IllegalArgumentException("write @every followed by a duration, e.g. '@every 10m'");
    }
    return new EverySchedule(Durations.parse(duration));
  }

  @Override
  public Optional<Instant> nextAfter(Instant time) {
    return Optional.of(time.plus(period));
  }

  @Override
  public Optional<Instant> latestDue(Instant after, Instant now) {
    long periods = Duration.between(after, now).toMillis() / period.toMillis();
    return periods < 1 ? Optional.empty() : Optional.of(after.plus(period.multipliedBy(periods)));
  }
}
