package dev.stasis.operator.retention;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class RetentionPolicyTest {
  static final Instant T0 = Instant.parse("2025-03-10T10:00:00Z");

  /**
   * Checkpoints are written as name:phase:minutes-after-T0, oldest first (C Completed, F Failed,
   * R Running); the clock stands at T0 + 60 minutes.
   */
  @ParameterizedTest(name = "keepLast {0}, maxAge {1}, keepFailed {2}: {3} -> delete {4}")
  @CsvSource(delimiter = '|', nullValues = "-", textBlock = """
      # keepLast | maxAge | keepFailed | checkpoints                             | deleted
      2          | -      | -          | a:C:1 b:F:2 c:C:3 d:F:4 e:C:5 f:R:6     | a b
      1          | -      | 0          | a:C:1 b:C:2 c:F:3                       | a c
      3          | -      | -          | a:C:1 b:C:2                             | -
      # the newest Completed one stays however old; Failed ones do not
      -          | 30m    | 5          | a:C:1 b:C:2 c:F:3 d:F:50                | a c
      -          | 30m    | -          | a:C:40 b:C:50                           | -
      # checkpoints still being taken are never deleted
      1          | 1m     | 0          | a:R:1 b:R:2                             | -
      """)
  void whatIsDeleted(Integer keepLast, String maxAge, Integer keepFailed, String checkpoints, String deleted) {
    CheckpointScheduleSpec.Retention spec = new CheckpointScheduleSpec.Retention();
    spec.keepLast = keepLast;
    spec.maxAge = maxAge;
    spec.keepFailed = keepFailed;
    List<Checkpoint> doomed = RetentionPolicy.of(spec).toDelete(parse(checkpoints), T0.plus(Duration.ofMinutes(60)));
    assertThat(doomed.stream().map(c -> c.getMetadata().getName()))
        .containsExactlyElementsOf(deleted == null ? List.of() : Arrays.asList(deleted.split(" ")));
  }

  @Test
  void withoutRetentionEverythingIsKept() {
    assertThat(RetentionPolicy.of(null).toDelete(parse("a:C:1 b:F:2 c:F:3 d:C:4"), T0.plus(Duration.ofDays(999))))
        .isEmpty();
  }

  @Test
  void nextExpiryIsWhenTheOldestDeletableOneGrowsTooOld() {
    CheckpointScheduleSpec.Retention spec = new CheckpointScheduleSpec.Retention();
    spec.maxAge = "30m";
    spec.keepFailed = 5;
    RetentionPolicy policy = RetentionPolicy.of(spec);
    assertThat(policy.nextExpiry(parse("a:C:10 b:F:5 c:C:20"))).contains(T0.plus(Duration.ofMinutes(35)));
    assertThat(policy.nextExpiry(parse("a:C:10"))).isEmpty();
    assertThat(RetentionPolicy.of(null).nextExpiry(parse("a:C:10 b:C:20"))).isEmpty();
  }

  @Test
  void invalidPolicies() {
    CheckpointScheduleSpec.Retention spec = new CheckpointScheduleSpec.Retention();
    spec.maxAge = "a week";
    assertThatThrownBy(() -> RetentionPolicy.of(spec)).hasMessageContaining("spec.retention.maxAge: 'a week' is not a duration");
  }

  private static List<Checkpoint> parse(String checkpoints) {
    return Arrays.stream(checkpoints.split(" ")).map(text -> {
      String[] parts = text.split(":");
      Checkpoint c = new Checkpoint();
      c.setMetadata(new ObjectMetaBuilder().withName(parts[0])
          .withCreationTimestamp(T0.plus(Duration.ofMinutes(Long.parseLong(parts[2]))).toString()).build());
      c.setStatus(new CheckpointStatus());
      c.getStatus().phase = switch (parts[1]) {
        case "C" -> CheckpointPhase.Completed;
        case "F" -> CheckpointPhase.Failed;
        default -> CheckpointPhase.Running;
      };
      return c;
    }).toList();
  }
}
