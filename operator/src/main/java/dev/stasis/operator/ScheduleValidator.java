package dev.stasis.operator;

import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.kube.Labels;
import dev.stasis.operator.retention.RetentionPolicy;
import dev.stasis.operator.schedule.Durations;
import dev.stasis.operator.schedule.RunSchedule;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import java.time.Duration;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;

/**
 * Whether a CheckpointSchedule can run as written: a function of its name and spec alone. The CRD
 * schema checks most of it too; this guards clusters where it was bypassed, and says in the
 * schedule's words what the schema cannot (a cron expression, a time zone, a retention).
 */
final class ScheduleValidator {
  /** The schedule's name becomes a label value, and those have at most 63 characters. */
  static final int MAX_NAME_LENGTH = 63;

  private ScheduleValidator() {}

  /** A spec that passed validation, in the forms the schedule works with. */
  record ValidSchedule(RunSchedule runs, Duration startingDeadline, ConcurrencyPolicy concurrency,
      RetentionPolicy retention, CheckpointTemplate template, LabelSelector selector, List<String> containers,
      boolean onNodeDrain, Duration failoverAfter, boolean migrateOnDrain) {}

  /** The shortest failover.onNodeLost.after: three of the agents' heartbeats, so that a late one never fails a node over. */
  static final Duration MIN_FAILOVER_AFTER = Duration.ofMinutes(1);

  /** The spec in the forms a schedule works with, or why it cannot be run as written. */
  static ValidSchedule validate(CheckpointSchedule schedule) throws Refusal {
    String name = schedule.getMetadata().getName();
    if (name.length() > MAX_NAME_LENGTH) {
      throw new Refusal("NameTooLong", "the schedule's name goes into the label " + Labels.SCHEDULE + " of its"
          + " Checkpoints and may have at most " + MAX_NAME_LENGTH + " characters; this one has " + name.length());
    }
    CheckpointScheduleSpec spec = schedule.getSpec();
    if (spec == null || (spec.checkpointTemplate == null) == (spec.selector == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of spec.checkpointTemplate (a fixed target) or spec.selector (pods by label)");
    }
    if (spec.selector != null) {
      validateSelector(spec.selector);
      if (spec.containers != null && spec.containers.stream().anyMatch(c -> c == null || c.isBlank())) {
        throw new Refusal("InvalidTarget", "spec.containers: a container name is empty");
      }
    } else {
      if (spec.containers != null || spec.storage != null || spec.ttl != null || spec.retainArchive != null
          || spec.backoffLimit != null) {
        throw new Refusal("InvalidTarget", "spec.containers, storage, ttl, retainArchive and backoffLimit only go"
            + " with spec.selector: set checkpointTemplate.target.pod.containers and the others in"
            + " spec.checkpointTemplate instead");
      }
      var target = spec.checkpointTemplate.target;
      if (target == null || (target.process == null) == (target.pod == null)) {
        throw new Refusal("InvalidTarget", "set exactly one of spec.checkpointTemplate.target.process (a process tree"
            + " on a node) or spec.checkpointTemplate.target.pod");
      }
    }
    RunSchedule runs;
    try {
      runs = RunSchedule.parse(spec.schedule, zone(spec.timeZone));
    } catch (IllegalArgumentException e) {
      throw new Refusal("InvalidSchedule", "spec.schedule: " + e.getMessage());
    }
    if (spec.startingDeadlineSeconds != null && spec.startingDeadlineSeconds < 0) {
      throw new Refusal("InvalidStartingDeadline",
          "spec.startingDeadlineSeconds must be 0 or more, got " + spec.startingDeadlineSeconds);
    }
    RetentionPolicy retention;
    try {
      retention = RetentionPolicy.of(spec.retention);
    } catch (IllegalArgumentException e) {
      throw new Refusal("InvalidRetention", e.getMessage());
    }
    if (spec.checkpointTemplate != null) {
      requireDuration("spec.checkpointTemplate.ttl", spec.checkpointTemplate.ttl);
    }
    requireDuration("spec.ttl", spec.ttl);
    boolean migrateOnDrain = spec.failover != null && spec.failover.migratesOnDrain();
    if (migrateOnDrain && (spec.checkpointTemplate == null || spec.checkpointTemplate.target == null)) {
      throw new Refusal("InvalidFailover", "spec.failover.onDrain moves the target of a checkpointTemplate (a process"
          + " tree or a pod); with a selector, remove spec.failover and restore the pods' checkpoints with a Restore");
    }
    Duration failoverAfter = failoverAfter(spec);
    return new ValidSchedule(runs,
        spec.startingDeadlineSeconds == null ? null : Duration.ofSeconds(spec.startingDeadlineSeconds),
        spec.concurrencyPolicyOrDefault(), retention, spec.checkpointTemplate, spec.selector,
        spec.containers == null ? List.of() : spec.containers,
        (spec.triggers != null && Boolean.TRUE.equals(spec.triggers.onNodeDrain)) || migrateOnDrain, failoverAfter,
        migrateOnDrain);
  }

  /** How long a node must be lost before failover.onNodeLost restores the target elsewhere; null without it. */
  private static Duration failoverAfter(CheckpointScheduleSpec spec) throws Refusal {
    if (spec.failover == null || spec.failover.onNodeLost == null) {
      return null;
    }
    if (spec.checkpointTemplate == null || spec.checkpointTemplate.target == null) {
      throw new Refusal("InvalidFailover", "spec.failover.onNodeLost moves the target of a checkpointTemplate (a process"
          + " tree or a pod); with a selector, remove spec.failover and restore the pods' checkpoints with a Restore");
    }
    Duration after;
    try {
      after = Durations.parse(spec.failover.onNodeLost.after);
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new Refusal("InvalidFailover", "spec.failover.onNodeLost.after: '" + spec.failover.onNodeLost.after
          + "' is not a duration such as 2m");
    }
    if (after.compareTo(MIN_FAILOVER_AFTER) < 0) {
      throw new Refusal("InvalidFailover", "spec.failover.onNodeLost.after must be at least "
          + MIN_FAILOVER_AFTER.toSeconds() + "s (three of the agents' heartbeats, so that a late one never fails a node"
          + " over), got " + spec.failover.onNodeLost.after);
    }
    return after;
  }

  private static void requireDuration(String field, String ttl) throws Refusal {
    if (ttl != null) {
      try {
        Durations.parse(ttl);
      } catch (IllegalArgumentException e) {
        throw new Refusal("InvalidTtl", field + ": " + e.getMessage());
      }
    }
  }

  /** What the API server would refuse in a selector, said in the schedule's words instead of an HTTP 400. */
  private static void validateSelector(LabelSelector selector) throws Refusal {
    for (LabelSelectorRequirement requirement : Optional.ofNullable(selector.getMatchExpressions()).orElse(List.of())) {
      String operator = requirement.getOperator();
      boolean hasValues = requirement.getValues() != null && !requirement.getValues().isEmpty();
      boolean needsValues = "In".equals(operator) || "NotIn".equals(operator);
      if (!needsValues && !"Exists".equals(operator) && !"DoesNotExist".equals(operator)) {
        throw new Refusal("InvalidSelector", "spec.selector.matchExpressions: operator '" + operator + "' of key '"
            + requirement.getKey() + "' is none of In, NotIn, Exists, DoesNotExist");
      }
      if (needsValues != hasValues) {
        throw new Refusal("InvalidSelector", "spec.selector.matchExpressions: operator " + operator + " of key '"
            + requirement.getKey() + "' " + (needsValues ? "needs values" : "takes no values"));
      }
    }
  }

  private static ZoneId zone(String timeZone) throws Refusal {
    if (timeZone == null || timeZone.isBlank()) {
      return ZoneOffset.UTC;
    }
    if (!ZoneId.getAvailableZoneIds().contains(timeZone)) {
      throw new Refusal("UnknownTimeZone", "spec.timeZone '" + timeZone
          + "' is not an IANA time zone: write one such as UTC, Europe/Berlin or America/New_York");
    }
    return ZoneId.of(timeZone);
  }

}
