package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Conditions;
import dev.stasis.testing.GitOpsConditions;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each transition of a Checkpoint owns its precondition: the wrong node's agent, or a writer whose
 * work has moved on, moves nothing. Against the mock API server's CRUD store, which does not refuse
 * stale versions: the transitions are given the newest copy here, and StatusConflictIT shows a
 * stale writer retried on the real API server's 409.
 */
@EnableKubernetesMockClient(crud = true)
class CheckpointLifecycleTest {
  static final String NS = "jobs";

  KubernetesClient client;
  CheckpointLifecycle lifecycle;
  final List<CheckpointStatus> finished = new ArrayList<>();

  @BeforeEach
  void lifecycle() {
    lifecycle = new CheckpointLifecycle(client, new EventRecorder(client, "test", "test"), finished::add);
  }

  @Test
  void theOperatorAssignsAPendingCheckpointToANodeAndLabelsItForThatNodesAgent() {
    Checkpoint assigned = lifecycle.assign(created("c"), "node-a", "fs", null, null);
    assertThat(assigned.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(assigned.getStatus().node).isEqualTo("node-a");
    assertThat(assigned.getStatus().storage).isEqualTo("fs");
    assertThat(Labels.node(read("c"))).isEqualTo("node-a");
    assertThat(lifecycle.isPendingOn(read("c"), "node-a")).isTrue();
    assertThat(events()).anyMatch(e -> e.getReason().equals("Assigned"));

    Checkpoint running = lifecycle.start(read("c"), "node-a", "checkpointing", s -> {}).orElseThrow();
    assertThatThrownBy(() -> lifecycle.assign(running, "node-b", "fs", null, null))
        .as("only Pending work is assigned").isInstanceOf(IllegalStateException.class);
  }

  @Test
  void onlyTheAgentOfTheAssignedNodeStartsItAndOnlyOnce() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    Checkpoint pending = read("c");
    assertThat(lifecycle.start(pending, "node-b", "checkpointing", s -> {})).as("another node's agent").isEmpty();
    Checkpoint running = lifecycle.start(pending, "node-a", "checkpointing PID 42", s -> {}).orElseThrow();
    assertThat(running.getStatus().phase).isEqualTo(CheckpointPhase.Running);
    assertThat(running.getStatus().attempts).isEqualTo(1);
    assertThat(running.getStatus().message).isEqualTo("checkpointing PID 42");
    assertThat(lifecycle.start(read("c"), "node-a", "again", s -> {})).as("started already").isEmpty();
    assertThat(read("c").getStatus().attempts).isEqualTo(1);
  }

  @Test
  void aRetryIsAnotherAttemptThatSaysWhichOfHowMany() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    Checkpoint running = lifecycle.start(read("c"), "node-a", "checkpointing", s -> {}).orElseThrow();
    Checkpoint waiting = lifecycle.retryLater(running, "StorageFailed", "attempt 1/4 failed", "2026-01-01T00:00:10Z")
        .orElseThrow();
    assertThat(waiting.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(waiting.getStatus().node).as("stays on its node").isEqualTo("node-a");
    assertThat(waiting.getStatus().startTime).isNull();
    assertThat(Conditions.isTrue(waiting.getStatus().conditions, Conditions.RETRYING)).isTrue();
    assertThat(lifecycle.retryLater(read("c"), "StorageFailed", "again", "2026-01-01T00:00:20Z"))
        .as("no longer Running").isEmpty();
    Checkpoint second = lifecycle.start(waiting, "node-a", "checkpointing", s -> {}).orElseThrow();
    assertThat(second.getStatus().message).isEqualTo("checkpointing, attempt 2/4");
    assertThat(second.getStatus().nextRetryTime).isNull();
  }

  @Test
  void theAgentCompletesOrFailsOnlyARunningCheckpointAndEitherEndsItForGood() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    Checkpoint running = lifecycle.start(read("c"), "node-a", "checkpointing", s -> {}).orElseThrow();
    ArchiveStatus archive = new ArchiveStatus();
    archive.uri = "file:///srv/jobs/c/archive.tar.zst";
    archive.storedBytes = 10L;
    Checkpoint done = lifecycle.complete(running, archive, null, "stored 10 bytes").orElseThrow();
    assertThat(done.getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    assertThat(Conditions.isTrue(done.getStatus().conditions, Conditions.COMPLETE)).isTrue();
    assertThat(finished).extracting(s -> s.phase).containsExactly(CheckpointPhase.Completed);

    assertThat(lifecycle.fail(read("c"), "AgentError", "late", null)).as("a Completed one never fails").isEmpty();
    assertThat(lifecycle.failAsAgentLost(read("c"), "AgentUnavailable", "gone")).isEmpty();
    assertThat(read("c").getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    assertThat(finished).hasSize(1);
  }

  @Test
  void finishingFromTheRecordNeedsTheRecordAndTheNode() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    Checkpoint running = lifecycle.start(read("c"), "node-a", "checkpointing", s -> {}).orElseThrow();
    assertThat(lifecycle.completeFromRecord(running, "node-a", "from the record")).as("nothing recorded").isEmpty();
    ArchiveStatus archive = new ArchiveStatus();
    archive.sha256 = "ab".repeat(32);
    archive.manifestSha256 = "cd".repeat(32);
    Checkpoint recorded = lifecycle.recordArchive(running, archive, "stored; ending the workload").orElseThrow();
    assertThat(recorded.getStatus().phase).isEqualTo(CheckpointPhase.Running);
    assertThat(lifecycle.completeFromRecord(recorded, "node-b", "from the record")).as("another node").isEmpty();
    Checkpoint failed = lifecycle.failFromRecord(recorded, "node-a", "ArchiveMissing", "not in the storage")
        .orElseThrow();
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(events()).anyMatch(e -> e.getReason().equals("ArchiveMissing") && e.getType().equals("Warning"));
  }

  @Test
  void aRefusalBeforeTheSlotCountsAsAnAttemptAndEndsIt() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    Checkpoint failed = lifecycle.refuseBeforeStart(read("c"), "node-a", "ProcessNotFound", "no process 42")
        .orElseThrow();
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(failed.getStatus().attempts).isEqualTo(1);
    assertThat(failed.getStatus().message).isEqualTo("no process 42");
    assertThat(lifecycle.refuseBeforeStart(read("c"), "node-a", "ProcessNotFound", "again")).isEmpty();
  }

  @Test
  void theOperatorRefusesAndRetriesOnlyWhatItHasNotAssigned() {
    Checkpoint c = created("c");
    Checkpoint waiting = lifecycle.retryRefusalLater(c, CheckpointLifecycle.pending(c), 1,
        "StorageUnavailable", "attempt 1/2 failed", "2026-01-01T00:00:10Z");
    assertThat(waiting.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(waiting.getStatus().attempts).isEqualTo(1);
    Checkpoint refused = lifecycle.refuse(waiting, CheckpointLifecycle.refused(waiting), "StorageUnavailable",
        "failed after 2 attempts");
    assertThat(refused.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(refused.getStatus().attempts).isEqualTo(2);
    assertThat(Conditions.isFalse(refused.getStatus().conditions, Conditions.RETRYING)).isTrue();
  }

  /** Flux (kstatus) and Argo CD read the conditions every transition leaves; Complete and Failed stay for kubectl wait. */
  @Test
  void everyTransitionLeavesReadyReconcilingOrStalledAtTheResourcesGeneration() {
    Checkpoint c = created("c");
    Checkpoint waiting = lifecycle.retryRefusalLater(c, CheckpointLifecycle.pending(c), 1,
        "StorageUnavailable", "attempt 1/2 failed: storage fs is unavailable", "2026-01-01T00:00:10Z");
    GitOpsConditions.assertReconciling(waiting.getStatus(), "StorageUnavailable", 1);
    Checkpoint assigned = lifecycle.assign(waiting, "node-a", "fs", null, null);
    GitOpsConditions.assertReconciling(assigned.getStatus(), "Pending", 1);
    assertThat(Conditions.find(assigned.getStatus().conditions, Conditions.RECONCILING).getMessage())
        .isEqualTo("waiting for the agent on node node-a");
    Checkpoint queued = lifecycle.queue(read("c"), "node-a", 2, "waiting for a slot").orElseThrow();
    GitOpsConditions.assertReconciling(queued.getStatus(), "WaitingForNodeSlot", 1);
    Checkpoint running = lifecycle.start(read("c"), "node-a", "checkpointing PID 42", s -> {}).orElseThrow();
    GitOpsConditions.assertReconciling(running.getStatus(), "Running", 1);

    Checkpoint done = lifecycle.complete(running, new ArchiveStatus(), null, "stored 10 bytes").orElseThrow();
    GitOpsConditions.assertReady(done.getStatus(), "Completed", 1);
    assertThat(Conditions.isTrue(done.getStatus().conditions, Conditions.COMPLETE)).isTrue();

    lifecycle.assign(created("d"), "node-a", "fs", null, null);
    Checkpoint failed = lifecycle.fail(lifecycle.start(read("d"), "node-a", "checkpointing", s -> {}).orElseThrow(),
        "CriuDumpFailed", "criu dump exited with 1", "Error (criu/cr-dump.c:1)").orElseThrow();
    GitOpsConditions.assertStalled(failed.getStatus(), "CriuDumpFailed", 1);
    assertThat(Conditions.find(failed.getStatus().conditions, Conditions.STALLED).getMessage())
        .isEqualTo("criu dump exited with 1");
    assertThat(Conditions.isTrue(failed.getStatus().conditions, Conditions.FAILED)).isTrue();
    assertThat(Conditions.isFalse(failed.getStatus().conditions, Conditions.COMPLETE)).isTrue();

    Checkpoint e = created("e");
    Checkpoint refused = lifecycle.refuse(e, CheckpointLifecycle.refused(e), "StorageNotFound", "no storage");
    GitOpsConditions.assertStalled(refused.getStatus(), "StorageNotFound", 1);
  }

  /**
   * A field of a finished Checkpoint's spec that may change (retainArchive) changed: the operator
   * observes the new generation, or kstatus would say InProgress for good. Nothing else moves.
   */
  @Test
  void aChangedSpecOfAFinishedCheckpointIsObservedOnce() {
    lifecycle.assign(created("c"), "node-a", "fs", null, null);
    lifecycle.complete(lifecycle.start(read("c"), "node-a", "checkpointing", s -> {}).orElseThrow(),
        new ArchiveStatus(), null, "stored").orElseThrow();
    assertThat(lifecycle.observeGeneration(read("c"))).as("nothing new").isEmpty();

    Checkpoint changed = read("c");
    changed.getSpec().retainArchive = true;
    changed.getMetadata().setGeneration(2L);
    changed = client.resource(changed).update();
    String completedAt = changed.getStatus().completionTime;
    Checkpoint observed = lifecycle.observeGeneration(changed).orElseThrow();
    GitOpsConditions.assertReady(observed.getStatus(), "Completed", 2);
    assertThat(observed.getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    assertThat(observed.getStatus().completionTime).isEqualTo(completedAt);
    assertThat(lifecycle.observeGeneration(observed)).as("observed already").isEmpty();

    lifecycle.assign(created("running"), "node-a", "fs", null, null);
    Checkpoint running = lifecycle.start(read("running"), "node-a", "checkpointing", s -> {}).orElseThrow();
    running.getMetadata().setGeneration(2L);
    running = client.resource(running).update();
    assertThat(lifecycle.observeGeneration(running)).as("running work is the agent's to write").isEmpty();
  }

  private Checkpoint created(String name) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 42)));
    return client.resource(c).create();
  }

  private Checkpoint read(String name) {
    return client.resources(Checkpoint.class).inNamespace(NS).withName(name).get();
  }

  private List<Event> events() {
    return client.v1().events().inNamespace(NS).list().getItems();
  }
}
