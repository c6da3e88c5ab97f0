package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.ConditionedStatus;
import dev.stasis.api.Conditions;
import io.fabric8.kubernetes.api.model.Condition;

/**
 * What kstatus (Flux) and an Argo CD health check read of a status: Ready, and Reconciling or
 * Stalled only while true, all of them and the status itself at the resource's generation.
 */
public final class GitOpsConditions {
  private GitOpsConditions() {}

  /** kstatus: InProgress. */
  public static void assertReconciling(ConditionedStatus status, String reason, long generation) {
    assertConditions(status, "False", Conditions.RECONCILING, reason, generation);
  }

  /** kstatus: Current. */
  public static void assertReady(ConditionedStatus status, String reason, long generation) {
    assertConditions(status, "True", null, reason, generation);
  }

  /** kstatus: Failed, with the failure's reason. */
  public static void assertStalled(ConditionedStatus status, String reason, long generation) {
    assertConditions(status, "False", Conditions.STALLED, reason, generation);
  }

  private static void assertConditions(ConditionedStatus status, String ready, String present, String reason,
      long generation) {
    Condition readyCondition = Conditions.find(status.conditions(), Conditions.READY);
    assertThat(readyCondition).as("Ready in %s", status.conditions()).isNotNull();
    assertThat(readyCondition.getStatus()).as("Ready").isEqualTo(ready);
    assertThat(readyCondition.getReason()).as("Ready's reason").isEqualTo(reason);
    for (String type : new String[] {Conditions.RECONCILING, Conditions.STALLED}) {
      Condition condition = Conditions.find(status.conditions(), type);
      if (type.equals(present)) {
        assertThat(condition).as(type).isNotNull();
        assertThat(condition.getStatus()).as(type).isEqualTo("True");
        assertThat(condition.getReason()).as(type + "'s reason").isEqualTo(reason);
        assertThat(condition.getMessage()).as(type + "'s message").isEqualTo(readyCondition.getMessage());
      } else {
        assertThat(condition).as(type + " is there only while true").isNull();
      }
    }
    assertThat(status.observedGeneration()).as("status.observedGeneration").isEqualTo(generation);
    assertThat(status.conditions()).as("observedGeneration of every condition")
        .allSatisfy(c -> assertThat(c.getObservedGeneration()).as(c.getType()).isEqualTo(generation));
  }
}
