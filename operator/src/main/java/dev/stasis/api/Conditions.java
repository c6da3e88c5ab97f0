package dev.stasis.api;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * Sets conditions the way Kubernetes does: lastTransitionTime only moves when the status of a
 * condition changes, so rewriting the same condition every pass causes no update loop. Ready,
 * Reconciling and Stalled are not set by hand: {@link #summarize} derives them from the status's
 * {@link ConditionedStatus#readiness} each time a status is written.
 */
public final class Conditions {
  public static final String COMPLETE = "Complete";
  public static final String FAILED = "Failed";
  public static final String AVAILABLE = "Available";
  public static final String READY = "Ready";
  public static final String RETRYING = "Retrying";
  /** kstatus' "work is under way": present only while True ("abnormal-true", as Flux's own kinds do). */
  public static final String RECONCILING = "Reconciling";
  /** kstatus' "failed, and stays so until something changes": present only while True. */
  public static final String STALLED = "Stalled";

  private Conditions() {}

  public static void set(
      ConditionedStatus status, String type, boolean value, String reason, String message, Long generation) {
    List<Condition> conditions = status.conditions();
    String newStatus = value ? "True" : "False";
    Condition existing = find(conditions, type);
    String transition =
        existing != null && newStatus.equals(existing.getStatus())
            ? existing.getLastTransitionTime()
            : now();
    var condition = new Condition(transition, message, generation, reason, newStatus, type);
    if (existing != null) {
      conditions.set(conditions.indexOf(existing), condition);
    } else {
      conditions.add(condition);
    }
  }

  /**
   * Ready (always there, True or False), Reconciling and Stalled (there only while True) from what
   * the status says of itself, and {@code generation} as the observed generation of the status and
   * of every condition in it: the writer of a status answers for all of it as of that generation.
   */
  public static void summarize(ConditionedStatus status, Long generation) {
    Readiness readiness = status.readiness();
    status.observedGeneration(generation);
    set(status, READY, readiness.state() == Readiness.State.READY, readiness.reason(), readiness.message(), generation);
    setWhileTrue(status, RECONCILING, readiness.state() == Readiness.State.RECONCILING, readiness, generation);
    setWhileTrue(status, STALLED, readiness.state() == Readiness.State.STALLED, readiness, generation);
    status.conditions().forEach(c -> c.setObservedGeneration(generation));
  }

  /**
   * For a status built afresh: each condition whose status is what it was in {@code before} keeps
   * the transition time it had there, so that writing the same status again changes nothing.
   */
  public static void keepTransitionTimes(List<Condition> before, List<Condition> after) {
    for (Condition condition : after) {
      Condition old = find(before, condition.getType());
      if (old != null && old.getStatus().equals(condition.getStatus())) {
        condition.setLastTransitionTime(old.getLastTransitionTime());
      }
    }
  }

  private static void setWhileTrue(ConditionedStatus status, String type, boolean value, Readiness readiness,
      Long generation) {
    if (value) {
      set(status, type, true, readiness.reason(), readiness.message(), generation);
    } else {
      status.conditions().removeIf(c -> type.equals(c.getType()));
    }
  }

  public static Condition find(List<Condition> conditions, String type) {
    if (conditions == null) {
      return null;
    }
    return conditions.stream().filter(c -> type.equals(c.getType())).findFirst().orElse(null);
  }

  public static boolean isTrue(List<Condition> conditions, String type) {
    Condition c = find(conditions, type);
    return c != null && "True".equals(c.getStatus());
  }

  public static boolean isFalse(List<Condition> conditions, String type) {
    Condition c = find(conditions, type);
    return c != null && "False".equals(c.getStatus());
  }

  public static String now() {
    return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
  }
}
