package dev.stasis.operator.retention;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.operator.schedule.Durations;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Which finished checkpoints of a schedule to delete: Completed ones beyond {@code keepLast} or
 * older than {@code maxAge}, but never the newest Completed one; Failed ones beyond
 * {@code keepFailed} or older than {@code maxAge}. Checkpoints still being taken are never touched.
 * Without a retention, everything is kept.
 */
public record RetentionPolicy(Integer keepLast, Duration maxAge, int keepFailed) {
  public static final RetentionPolicy KEEP_ALL = new RetentionPolicy(null, null, Integer.MAX_VALUE);
  static final int DEFAULT_KEEP_FAILED = 1;

  /** @throws IllegalArgumentException saying which field is wrong */
  public static RetentionPolicy of(CheckpointScheduleSpec.Retention retention) {
    if (retention == null) {
      return KEEP_ALL;
    }
    if (retention.keepLast != null && retention.keepLast < 1) {
      throw new IllegalArgumentException("spec.retention.keepLast must be 1 or more (the newest Completed checkpoint"
          + " is always kept), got " + retention.keepLast);
    }
    if (retention.keepFailed != null && retention.keepFailed < 0) {
      throw new IllegalArgumentException("spec.retention.keepFailed must be 0 or more, got " + retention.keepFailed);
    }
    Duration maxAge = null;
    if (retention.maxAge != null) {
      try {
        maxAge = Durations.parse(retention.maxAge);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("spec.retention.maxAge: " + e.getMessage());
      }
    }
    return new RetentionPolicy(retention.keepLast, maxAge,
        retention.keepFailed != null ? retention.keepFailed : DEFAULT_KEEP_FAILED);
  }

  /** The checkpoints to delete now, oldest last. */
  public List<Checkpoint> toDelete(List<Checkpoint> checkpoints, Instant now) {
    List<Checkpoint> doomed = new ArrayList<>();
    List<Checkpoint> completed = newestFirst(checkpoints, CheckpointPhase.Completed);
    for (int i = 1; i < completed.size(); i++) {
      if ((keepLast != null && i >= keepLast) || expired(completed.get(i), now)) {
        doomed.add(completed.get(i));
      }
    }
    List<Checkpoint> failed = newestFirst(checkpoints, CheckpointPhase.Failed);
    for (int i = 0; i < failed.size(); i++) {
      if (i >= keepFailed || expired(failed.get(i), now)) {
        doomed.add(failed.get(i));
      }
    }
    return doomed;
  }

  /** When the next of {@code kept} grows older than maxAge, if one will. */
  public Optional<Instant> nextExpiry(List<Checkpoint> kept) {
    if (maxAge == null) {
      return Optional.empty();
    }
    List<Checkpoint> completed = newestFirst(kept, CheckpointPhase.Completed);
    List<Checkpoint> candidates = new ArrayList<>(completed.subList(Math.min(1, completed.size()), completed.size()));
    candidates.addAll(newestFirst(kept, CheckpointPhase.Failed));
    return candidates.stream().map(c -> created(c).plus(maxAge)).min(Comparator.naturalOrder());
  }

  private boolean expired(Checkpoint checkpoint, Instant now) {
    return maxAge != null && !created(checkpoint).plus(maxAge).isAfter(now);
  }

  private static List<Checkpoint> newestFirst(List<Checkpoint> checkpoints, CheckpointPhase phase) {
    return checkpoints.stream()
        .filter(c -> c.getMetadata().getDeletionTimestamp() == null)
        .filter(c -> c.getStatus() != null && c.getStatus().phase == phase)
        .sorted(Comparator.comparing(RetentionPolicy::created)
            .thenComparing(c -> c.getMetadata().getName()).reversed())
        .toList();
  }

  static Instant created(Checkpoint checkpoint) {
    return Instant.parse(checkpoint.getMetadata().getCreationTimestamp());
  }
}
