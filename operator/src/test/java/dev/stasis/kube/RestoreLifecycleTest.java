package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.Conditions;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.testing.GitOpsConditions;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each transition of a Restore owns its precondition (see CheckpointLifecycleTest for what the
 * mock API server's CRUD store does and does not show).
 */
@EnableKubernetesMockClient(crud = true)
class RestoreLifecycleTest {
  static final String NS = "jobs";

  KubernetesClient client;
  RestoreLifecycle lifecycle;
  final List<RestoreStatus> finished = new ArrayList<>();

  @BeforeEach
  void lifecycle() {
    lifecycle = new RestoreLifecycle(client, new EventRecorder(client, "test", "test"), finished::add);
  }

  @Test
  void theOperatorWaitsForTheCheckpointThenPlacesTheRestoreOnANode() {
    Restore waiting = lifecycle.waitForCheckpoint(created("r"), "c");
    assertThat(waiting.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(waiting.getStatus().reason).isEqualTo("CheckpointInProgress");
    PlacementStatus placement = new PlacementStatus();
    placement.summary = "node-a: the source node";
    Restore placed = lifecycle.assign(waiting, "c", "node-a", null, placement);
    assertThat(placed.getStatus().node).isEqualTo("node-a");
    assertThat(placed.getStatus().checkpoint).isEqualTo("c");
    assertThat(placed.getStatus().placement.summary).isEqualTo("node-a: the source node");
    assertThat(Labels.node(read("r"))).isEqualTo("node-a");
  }

  @Test
  void onlyTheAgentOfTheChosenNodeStartsIt() {
    lifecycle.assign(created("r"), "c", "node-a", null, null);
    assertThat(lifecycle.start(read("r"), "node-b", "restoring")).isEmpty();
    Restore restoring = lifecycle.start(read("r"), "node-a", "pre-flight check").orElseThrow();
    assertThat(restoring.getStatus().phase).isEqualTo(RestorePhase.Restoring);
    assertThat(restoring.getStatus().attempts).isEqualTo(1);
    assertThat(lifecycle.start(read("r"), "node-a", "again")).isEmpty();
  }

  @Test
  void aFailedPreflightHandsTheRestoreBackWithoutANodeAndItsFailureRecorded() {
    lifecycle.assign(created("r"), "c", "node-a", null, null);
    Restore restoring = lifecycle.start(read("r"), "node-a", "pre-flight check").orElseThrow();
    Restore handed = lifecycle.handBack(restoring, "node-a", "PreflightPathMissing", "/data is missing").orElseThrow();
    assertThat(handed.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(handed.getStatus().node).isNull();
    assertThat(handed.getStatus().placement.preflightFailures).singleElement()
        .satisfies(f -> assertThat(f.node).isEqualTo("node-a"));
    assertThat(lifecycle.isPendingOn(handed, "node-a")).as("no agent takes it until it is placed again").isFalse();
    assertThat(lifecycle.handBack(read("r"), "node-a", "PreflightPathMissing", "twice")).isEmpty();
  }

  @Test
  void aRestoredTreeCompletesTheRestoreAndItsEndIsRecordedOnce() {
    lifecycle.assign(created("r"), "c", "node-a", null, null);
    Restore restoring = lifecycle.start(read("r"), "node-a", "pre-flight check").orElseThrow();
    lifecycle.processExited(restoring, " (PID 42)");
    assertThat(read("r").getStatus().processState).as("not Completed yet").isNull();
    ProcessIdentity root = new ProcessIdentity();
    root.node = "node-a";
    root.pid = 42;
    root.startTicks = 123456L;
    root.bootId = "boot-1";
    Restore done = lifecycle.restored(restoring, 42, root, "restored as PID 42").orElseThrow();
    assertThat(done.getStatus().phase).isEqualTo(RestorePhase.Completed);
    assertThat(done.getStatus().restoredPid).isEqualTo(42);
    assertThat(done.getStatus().restoredProcess.sameProcessAs(root)).isTrue();
    assertThat(Conditions.isTrue(done.getStatus().conditions, Conditions.COMPLETE)).isTrue();
    assertThat(finished).extracting(s -> s.phase).containsExactly(RestorePhase.Completed);
    lifecycle.processExited(read("r"), " (PID 42)");
    assertThat(read("r").getStatus().processState).isEqualTo("Exited");
    assertThat(lifecycle.fail(read("r"), "AgentError", "late", null)).isEmpty();
  }

  @Test
  void onceImagesArePushedTheRestoreIsNoLongerTheAgentsToFailOrRetry() {
    lifecycle.assign(created("r"), "c", "node-a", null, null);
    lifecycle.start(read("r"), "node-a", "pushing checkpoint images").orElseThrow();
    var images = List.of(new CheckpointImageStatus("app", "registry/jobs@sha256:ab"));
    Restore pushed = lifecycle.imagesPushed(read("r"), images, "pushed 1 checkpoint image").orElseThrow();
    assertThat(pushed.getStatus().checkpointImages).extracting(i -> i.image).containsExactly("registry/jobs@sha256:ab");
    assertThat(pushed.getStatus().reason).isEqualTo("ImagesPushed");
    assertThat(lifecycle.imagesPushed(read("r"), images, "twice")).as("pushed once").isEmpty();
    assertThat(lifecycle.isAgentsPart(read("r"))).isFalse();
    assertThat(lifecycle.retryLater(read("r"), "AgentRestarted", "restarted", "2026-01-01T00:00:10Z")).isEmpty();
    assertThat(lifecycle.fail(read("r"), "AgentError", "late", null)).isEmpty();
    assertThat(read("r").getStatus().phase).isEqualTo(RestorePhase.Restoring);
  }

  /** Once the images are pushed, the operator makes the pod and ends the Restore; nobody moves it after. */
  @Test
  void theOperatorFinishesAPodRestoreOnlyWhileItIsRestoring() {
    lifecycle.assign(created("r"), "c", "node-a", null, null);
    lifecycle.start(read("r"), "node-a", "pushing checkpoint images").orElseThrow();
    lifecycle.imagesPushed(read("r"), List.of(new CheckpointImageStatus("app", "registry/jobs@sha256:ab")), "pushed")
        .orElseThrow();
    Restore created = lifecycle.podCreated(read("r"), "web-0", "created pod web-0").orElseThrow();
    assertThat(created.getStatus().restoredPod).isEqualTo("web-0");
    assertThat(created.getStatus().phase).isEqualTo(RestorePhase.Restoring);
    Restore done = lifecycle.completePod(created, "restored as pod web-0").orElseThrow();
    assertThat(done.getStatus().phase).isEqualTo(RestorePhase.Completed);
    assertThat(done.getStatus().completionTime).isNotNull();
    assertThat(Conditions.isTrue(done.getStatus().conditions, Conditions.COMPLETE)).isTrue();
    assertThat(finished).extracting(s -> s.phase).containsExactly(RestorePhase.Completed);
    assertThat(lifecycle.failPod(read("r"), "PodFailed", "late")).as("a Completed restore stays Completed").isEmpty();
    assertThat(lifecycle.podCreated(read("r"), "web-1", "late")).isEmpty();

    lifecycle.assign(created("s"), "c", "node-a", null, null);
    lifecycle.start(read("s"), "node-a", "pushing checkpoint images").orElseThrow();
    Restore failed = lifecycle.failPod(read("s"), "PodNameTaken", "cannot create pod web-0").orElseThrow();
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("PodNameTaken");
    assertThat(lifecycle.completePod(read("s"), "late")).isEmpty();
  }

  /** Flux (kstatus) and Argo CD read the conditions every transition leaves; Complete and Failed stay for kubectl wait. */
  @Test
  void everyTransitionLeavesReadyReconcilingOrStalledAtTheResourcesGeneration() {
    Restore waiting = lifecycle.waitForCheckpoint(created("r"), "c");
    GitOpsConditions.assertReconciling(waiting.getStatus(), "CheckpointInProgress", 1);
    assertThat(Conditions.find(waiting.getStatus().conditions, Conditions.RECONCILING).getMessage())
        .isEqualTo("waiting for Checkpoint 'c' to complete");
    lifecycle.assign(waiting, "c", "node-a", null, null);
    Restore restoring = lifecycle.start(read("r"), "node-a", "pre-flight check").orElseThrow();
    GitOpsConditions.assertReconciling(restoring.getStatus(), "Restoring", 1);
    Restore handedBack = lifecycle.handBack(restoring, "node-a", "PreflightPathMissing", "/data is missing")
        .orElseThrow();
    GitOpsConditions.assertReconciling(handedBack.getStatus(), "PreflightPathMissing", 1);

    lifecycle.assign(read("r"), "c", "node-b", null, handedBack.getStatus().placement);
    Restore restored = lifecycle.restored(lifecycle.start(read("r"), "node-b", "restoring").orElseThrow(), 42,
        null, "restored PID 42").orElseThrow();
    GitOpsConditions.assertReady(restored.getStatus(), "Restored", 1);
    assertThat(Conditions.isTrue(restored.getStatus().conditions, Conditions.COMPLETE)).isTrue();
    lifecycle.processExited(restored, " (PID 42)");
    GitOpsConditions.assertReady(read("r").getStatus(), "Restored", 1);

    lifecycle.assign(created("s"), "c", "node-a", null, null);
    Restore failed = lifecycle.failPreflight(lifecycle.start(read("s"), "node-a", "pre-flight").orElseThrow(),
        "node-a", "PreflightCpuMismatch", "node-a lacks avx512f").orElseThrow();
    GitOpsConditions.assertStalled(failed.getStatus(), "PreflightCpuMismatch", 1);
    assertThat(Conditions.isTrue(failed.getStatus().conditions, Conditions.FAILED)).isTrue();
  }

  private Restore created(String name) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef("c");
    return client.resource(r).create();
  }

  private Restore read(String name) {
    return client.resources(Restore.class).inNamespace(NS).withName(name).get();
  }
}
