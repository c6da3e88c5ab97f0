package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.MDC;

/** The fields a line about a resource carries, and what is left after the block. */
class LogFieldsTest {
  @AfterEach
  void clear() {
    MDC.clear();
  }

  @Test
  void aCheckpointsLinesCarryItsIdentityNodeAndAttemptAndTheBlockLeavesTheFieldsAsTheyWere() {
    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder().withNamespace("jobs").withName("sim").withUid("u-1").build());
    checkpoint.setStatus(new CheckpointStatus());
    checkpoint.getStatus().node = "node-a";
    checkpoint.getStatus().attempts = 2;
    MDC.put(LogFields.NAME, "the reconciled one"); // as JOSDK sets it around a reconcile

    try (var fields = LogFields.of(checkpoint)) {
      assertThat(MDC.getCopyOfContextMap()).containsEntry("resource.namespace", "jobs")
          .containsEntry("resource.name", "sim").containsEntry("resource.uid", "u-1")
          .containsEntry("resource.kind", "Checkpoint").containsEntry("node", "node-a").containsEntry("attempt", "2");
    }
    assertThat(MDC.getCopyOfContextMap()).containsOnlyKeys("resource.name").containsEntry("resource.name",
        "the reconciled one");
  }
}
