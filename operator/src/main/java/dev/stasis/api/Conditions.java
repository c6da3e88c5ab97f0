package dev.stasis.api;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * Sets conditions the way Kubernetes does: lastTransitionTime only moves when the status of a
 * condition changes, so rewriting the same condition every pass causes no update loop.
 */
public final class Conditions {
  public static final String COMPLETE = "Complete";
  public static final String FAILED = "Failed";
  public static final String AVAILABLE = "Available";
  public static final String READY = "Ready";
  public static final String RETRYING = "Retrying";

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
