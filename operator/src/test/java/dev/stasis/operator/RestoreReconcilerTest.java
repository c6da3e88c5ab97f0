package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.ScheduleRef;
import dev.stasis.kube.Labels;
import java.util.Map;
import dev.stasis.kube.EventRecorder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Fast checks of the operator's Restore decisions, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class RestoreReconcilerTest {
  static final String NS = "jobs";
  KubernetesClient client;
  RestoreReconciler reconciler;

  @BeforeEach
  void setUp() {
    reconciler = new RestoreReconciler(client, new EventRecorder(client, "operator", "test"));
  }

  @Test
  void checkpointOfAnotherNamespace() {
    Restore r = restore("r", "c", "other");
    assertFailed(reconcile(r), "CrossNamespaceCheckpoint", "only use Checkpoints of its own namespace (jobs)");
  }

  @Test
  void checkpointThatDoesNotExist() {
    assertFailed(reconcile(restore("r", "missing", null)), "CheckpointNotFound", "'missing' does not exist in namespace jobs");
  }

  @Test
  void checkpointThatFailed() {
    checkpoint("c", CheckpointPhase.Failed);
    assertFailed(reconcile(restore("r", "c", null)), "CheckpointNotCompleted", "failed");
  }

  @Test
  void waitsForACheckpointStillBeingTaken() {
    checkpoint("c", CheckpointPhase.Running);
    Restore r = reconcile(restore("r", "c", null));
    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().reason).isEqualTo("CheckpointInProgress");
  }

  @Test
  void scheduleWithoutACompletedCheckpoint() {
    scheduled("nightly-1", CheckpointPhase.Failed, "2025-03-10T10:00:00Z", "store-1");
    scheduled("nightly-2", CheckpointPhase.Running, null, "store-2");
    assertFailed(reconcile(restoreOfSchedule("r", "nightly")), "NoCompletedCheckpoint",
        "schedule 'nightly' has no Completed checkpoint in namespace jobs");
  }

  @Test
  void scheduleRefTakesTheNewestCompletedCheckpoint() {
    scheduled("nightly-1", CheckpointPhase.Completed, "2025-03-10T10:00:00Z", "store-1");
    scheduled("nightly-3", CheckpointPhase.Completed, "2025-03-10T12:00:00Z", "store-3");
    scheduled("nightly-2", CheckpointPhase.Completed, "2025-03-10T11:00:00Z", "store-2");
    scheduled("nightly-4", CheckpointPhase.Failed, "2025-03-10T13:00:00Z", "store-4");
    // which one was chosen shows in the storage it then looks for
    assertFailed(reconcile(restoreOfSchedule("r", "nightly")), "StorageNotFound", "'store-3'");
  }

  private void scheduled(String name, CheckpointPhase phase, String completionTime, String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS)
        .withLabels(Map.of(Labels.SCHEDULE, "nightly")).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().completionTime = completionTime;
    c.getStatus().storage = storage;
    client.resource(c).updateStatus();
  }

  private Restore restoreOfSchedule(String name, String schedule) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().scheduleRef = new ScheduleRef(schedule);
    return client.resource(r).create();
  }

  private void checkpoint(String name, CheckpointPhase phase) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().reason = "CriuDumpFailed";
    client.resource(c).updateStatus();
  }

  private Restore restore(String name, String checkpoint, String checkpointNamespace) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    r.getSpec().checkpointRef.namespace = checkpointNamespace;
    return client.resource(r).create();
  }

  private Restore reconcile(Restore r) {
    reconciler.reconcile(client.resource(r).get(), null);
    return client.resource(r).get();
  }

  private void assertFailed(Restore r, String reason, String message) {
    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(r.getStatus().reason).isEqualTo(reason);
    assertThat(r.getStatus().message).contains(message);
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals(reason) && e.getType().equals("Warning"));
  }
}
