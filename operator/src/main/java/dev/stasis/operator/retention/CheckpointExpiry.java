package dev.stasis.operator.retention;

import dev.stasis.api.Checkpoint;
import dev.stasis.operator.schedule.Durations;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/** A Checkpoint's spec.ttl, counted from its creation. */
public final class CheckpointExpiry {
  private CheckpointExpiry() {}

  /** Time until the checkpoint expires (zero or negative: expired); empty without a usable ttl. */
  public static Optional<Duration> timeLeft(Checkpoint checkpoint, Instant now) {
    String ttl = checkpoint.getSpec() == null ? null : checkpoint.getSpec().ttl;
    if (ttl == null) {
      return Optional.empty();
    }
    Duration lifetime;
    try {
      lifetime = Durations.parse(ttl);
    } catch (IllegalArgumentException e) {
      return Optional.empty(); // refused with InvalidTtl when the Checkpoint was validated
    }
    Instant created = Instant.parse(checkpoint.getMetadata().getCreationTimestamp());
    return Optional.of(Duration.between(now, created.plus(lifetime)));
  }
}
