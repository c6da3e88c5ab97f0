package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.testing.TestStorage;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationRecovery;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreStatus;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.testing.TestManifests;
import dev.stasis.testing.TestProfiles;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The operator's Migration decisions on the fabric8 CRUD mock server: what it creates, when it moves
 * on, and what it says when a child fails. The children's own work (CRIU, placement of the Restore)
 * is played here by writing their statuses; MigrationIT does it for real.
 */
@EnableKubernetesMockClient(crud = true)
class MigrationReconcilerTest {
  static final String NS = "jobs";
  KubernetesClient client;
  MigrationReconciler reconciler;
  @TempDir Path storageRoot;

  @BeforeEach
  void setUp() {
    reconciler = new MigrationReconciler(client, ClusterCache.reading(client), new EventRecorder(client, "operator", "test"),
        new TestingClock(Instant.now()));
    profile("node-a", "sse4_2", "avx2");
  }

  @Test
  void aMigrationCheckpointsTheTargetWithTheWorkloadStoppedThenRestoresItElsewhere() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    assertThat(m.getStatus().phase).isEqualTo(MigrationPhase.Checkpointing);
    assertThat(m.getStatus().sourceNode).isEqualTo("node-a");
    assertThat(m.getStatus().placement.summary).startsWith("node-b (compatible");
    Checkpoint c = checkpoint("move");
    assertThat(c.getSpec().target.process.pid).isEqualTo(4242);
    assertThat(c.getSpec().options.leaveRunning).as("ended only once its archive is stored").isFalse();
    assertThat(c.getMetadata().getOwnerReferences()).singleElement()
        .satisfies(o -> assertThat(o.getUid()).isEqualTo(m.getMetadata().getUid()));
    assertThat(c.getMetadata().getLabels()).containsEntry(Labels.MIGRATION, "move");

    assertThat(reconcile(m).getStatus().phase).as("waits for its checkpoint").isEqualTo(MigrationPhase.Checkpointing);
    assertThat(restore("move")).isNull();

    checkpointEnds("move", CheckpointPhase.Completed, null, "2026-01-01T10:00:00Z");
    Migration restoring = reconcile(m);
    assertThat(restoring.getStatus().phase).isEqualTo(MigrationPhase.Restoring);
    Restore r = restore("move");
    assertThat(r.getSpec().checkpointRef.name).isEqualTo("move");
    assertThat(r.getSpec().placement.excludeNodes).as("not back where it ran").containsExactly("node-a");

    restoreEnds("move", RestorePhase.Completed, null, "node-b", 77, "2026-01-01T10:00:12Z");
    Migration done = reconcile(m);
    assertThat(done.getStatus().phase).isEqualTo(MigrationPhase.Completed);
    assertThat(done.getStatus().node).isEqualTo("node-b");
    assertThat(done.getStatus().restoredPid).isEqualTo(77);
    assertThat(done.getStatus().restoredProcess.startTicks).as("the Restore's identity of it").isEqualTo(77_000L);
    assertThat(done.getStatus().frozenToRunningSeconds).isEqualTo(12);
    assertThat(done.getStatus().recovery).isNull();
    assertThat(done.getStatus().message).contains("moved from node node-a to node node-b (PID 77)", "no work for 12s");
    assertThat(events()).contains("Checkpointing", "Restoring", "Migrated");
  }

  /** The PROGRESS of a Migration is that of the child working now: its Checkpoint, then its Restore; 100% when done. */
  @Test
  void aMigrationShowsTheProgressOfItsWorkingChild() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    Checkpoint c = checkpoint("move");
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Running;
    c.getStatus().node = "node-a";
    c.getStatus().progress = ProgressStatus.of(ProgressStatus.UPLOADING, 379, 1000, "2026-01-01T10:00:02Z");
    client.resource(c).updateStatus();
    assertThat(reconcile(m).getStatus().progress).satisfies(p -> {
      assertThat(p.step).isEqualTo("Uploading");
      assertThat(p.percent).isEqualTo("37%");
    });
    String version = client.resource(m).get().getMetadata().getResourceVersion();
    assertThat(reconcile(m).getMetadata().getResourceVersion()).as("no write while the child did not move")
        .isEqualTo(version);

    checkpointEnds("move", CheckpointPhase.Completed, null, "2026-01-01T10:00:00Z");
    assertThat(reconcile(m).getStatus().progress).as("the Restore has not moved yet").isNull();
    restoreEnds("move", RestorePhase.Restoring, null, "node-b", null, null);
    Restore r = restore("move");
    r.getStatus().progress = ProgressStatus.of(ProgressStatus.DOWNLOADING, 500, 1000, "2026-01-01T10:00:08Z");
    client.resource(r).updateStatus();
    assertThat(reconcile(m).getStatus().progress.percent).isEqualTo("50%");

    restoreEnds("move", RestorePhase.Completed, null, "node-b", 77, "2026-01-01T10:00:12Z");
    Migration done = reconcile(m);
    assertThat(done.getStatus().progress.step).isEqualTo("Downloading");
    assertThat(done.getStatus().progress.percent).isEqualTo("100%");
  }

  /**
   * The kubelet's checkpoint leaves a pod running: the Migration deletes that pod (its UID) only once
   * the checkpoint is stored, restores only once it is gone, and lets the Restore, which owns the
   * restored pod, outlive it.
   */
  @Test
  void aPodIsDeletedOnlyOnceItsCheckpointIsStoredAndRestoredOnlyOnceItIsGone() throws Exception {
    podProfile("node-b");
    runningPod("sim-0", "node-a");
    String podUid = client.pods().inNamespace(NS).withName("sim-0").get().getMetadata().getUid();
    Migration m = reconcile(migration("move", s -> s.target = CheckpointTarget.pod("sim-0", null)));
    assertThat(m.getStatus().phase).as(m.getStatus().message).isEqualTo(MigrationPhase.Checkpointing);
    assertThat(m.getStatus().sourceNode).isEqualTo("node-a");
    assertThat(m.getStatus().sourcePodUid).isEqualTo(podUid);
    assertThat(checkpoint("move").getSpec().options).as("the kubelet's checkpoint leaves the pod running").isNull();

    reconcile(m);
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).as("runs on while it is checkpointed").isNotNull();

    podCheckpointStored("move", "sim-0", "2026-01-01T10:00:00Z");
    assertThat(reconcile(m).getStatus().phase).isEqualTo(MigrationPhase.Checkpointing);
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).as("deleted once its checkpoint is stored").isNull();
    assertThat(restore("move")).as("created only once the pod is gone (the mock deletes at once)").isNull();

    Migration restoring = reconcile(m);
    assertThat(restoring.getStatus().phase).isEqualTo(MigrationPhase.Restoring);
    assertThat(restoring.getStatus().message).contains("ended on node node-a (its pod deleted)");
    assertThat(restore("move").getSpec().pod.name).as("the pod comes back under its name").isEqualTo("sim-0");
    restoreEnds("move", RestorePhase.Completed, null, "node-b", null, "2026-01-01T10:00:09Z");
    Restore r = restore("move");
    r.getStatus().restoredPod = "sim-0";
    client.resource(r).updateStatus();
    Migration done = reconcile(m);
    assertThat(done.getStatus().phase).isEqualTo(MigrationPhase.Completed);
    assertThat(done.getStatus().restoredPod).isEqualTo("sim-0");
    assertThat(done.getStatus().frozenToRunningSeconds).isEqualTo(9);
    assertThat(done.getStatus().message).contains("moved from node node-a to node node-b (pod sim-0)");
    assertThat(restore("move").getMetadata().getOwnerReferences()).as("deleting the Migration keeps the moved pod")
        .isNullOrEmpty();
  }

  /**
   * A pod's checkpoint is stored, but by then no node can take it (here: the only other node's
   * NodeProfile is gone): the restore's pre-flight runs before the pod
   * is deleted, so the pod runs on untouched, and the Migration fails saying why.
   */
  @Test
  void aPodWhoseStoredCheckpointNoNodeCanTakeRunsOnUntouched() throws Exception {
    podProfile("node-b");
    runningPod("sim-0", "node-a");
    String podUid = client.pods().inNamespace(NS).withName("sim-0").get().getMetadata().getUid();
    Migration m = reconcile(migration("move", s -> s.target = CheckpointTarget.pod("sim-0", null)));
    assertThat(m.getStatus().phase).as(m.getStatus().message).isEqualTo(MigrationPhase.Checkpointing);
    client.resources(NodeProfile.class).withName("node-b").delete();
    podCheckpointStored("move", "sim-0", "2026-01-01T10:00:00Z");

    Migration failed = reconcile(m);
    assertFailed(failed, "NoCompatibleNode", "no node can take checkpoint move of pod sim-0: 0/1 nodes can run this"
        + " checkpoint: node-a excluded by spec.placement.excludeNodes");
    assertThat(failed.getStatus().message).endsWith("Pod sim-0 was not deleted and runs on on node node-a");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get().getMetadata().getUid()).as("untouched").isEqualTo(podUid);
    assertThat(restore("move")).isNull();
    reconcile(failed);
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).as("a Failed Migration stays so").isNotNull();
  }

  /** A pod's stored checkpoint whose manifest no longer matches what its status recorded is not restored: the pod stays. */
  @Test
  void aPodWhoseStoredManifestWasTamperedWithRunsOnUntouched() throws Exception {
    podProfile("node-b");
    runningPod("sim-0", "node-a");
    Migration m = reconcile(migration("move", s -> s.target = CheckpointTarget.pod("sim-0", null)));
    podCheckpointStored("move", "sim-0", "2026-01-01T10:00:00Z");
    Checkpoint c = checkpoint("move");
    try (var store = new FileSystemObjectStore(storageRoot)) {
      store.put(new ArchiveLayout(NS, "move", c.getMetadata().getUid()).containerManifestKey("app"), "{}".getBytes());
    }
    Migration failed = reconcile(m);
    assertFailed(failed, "ManifestTampered", "Pod sim-0 was not deleted and runs on on node node-a");
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).isNotNull();
    assertThat(restore("move")).isNull();
  }

  /** A pod evicted while it was checkpointed runs nowhere: the Migration does not claim that it runs on. */
  @Test
  void aPodDeletedWhileItsCheckpointFailsIsNotSaidToRunOn() {
    podProfile("node-b");
    runningPod("sim-0", "node-a");
    Migration m = reconcile(migration("move", s -> s.target = CheckpointTarget.pod("sim-0", null)));
    client.pods().inNamespace(NS).withName("sim-0").delete();
    checkpointEnds("move", CheckpointPhase.Failed, "PodNotFound", null);
    Migration failed = reconcile(m);
    assertFailed(failed, "PodNotFound", "and pod sim-0 was deleted meanwhile (an eviction without a PodDisruptionBudget"
        + " that holds it back?): the workload runs nowhere");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.NotRecovered);
    assertThat(restore("move")).isNull();
  }

  @Test
  void noOtherNodeThatCouldRunItRefusesBeforeAnythingIsStopped() {
    profile("node-c", "sse4_2");
    Migration m = reconcile(migration("move", s -> {}));
    assertFailed(m, "NoCompatibleNode", "0/2 nodes can run this checkpoint: node-a excluded by spec.placement.excludeNodes; "
        + "node-c missing CPU flags [avx2]. Nothing was stopped");
    assertThat(m.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(m.getStatus().placement.rejectedCount).isEqualTo(2);
    assertThat(checkpoint("move")).as("nothing was checkpointed").isNull();

    Migration inPlace = reconcile(migration("in-place", s -> s.allowSourceNode = true));
    assertThat(inPlace.getStatus().phase).as("allowSourceNode: a stop and restore in place").isEqualTo(MigrationPhase.Checkpointing);
    assertThat(inPlace.getStatus().placement.summary).startsWith("node-a (the source node)");
  }

  @Test
  void aFailedCheckpointLeavesTheWorkloadRunningOnItsSource() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    checkpointEnds("move", CheckpointPhase.Failed, "ProcessTargetNotAllowed", null);
    Migration failed = reconcile(m);
    assertFailed(failed, "ProcessTargetNotAllowed", "the checkpoint failed: ProcessTargetNotAllowed says why. The workload was"
        + " not moved and runs on on node node-a");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(restore("move")).isNull();
  }

  @Test
  void aFailedRestoreElsewhereBringsTheWorkloadBackOnItsSource() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    checkpointEnds("move", CheckpointPhase.Completed, null, "2026-01-01T10:00:00Z");
    reconcile(m);
    restoreEnds("move", RestorePhase.Failed, "PreflightPathMissing", null, null, "2026-01-01T10:00:05Z");

    Migration back = reconcile(m);
    assertThat(back.getStatus().phase).isEqualTo(MigrationPhase.Restoring);
    assertThat(back.getStatus().recovery).isEqualTo(MigrationRecovery.RestoringOnSource);
    assertThat(back.getStatus().reason).isEqualTo("PreflightPathMissing");
    Restore onSource = restore("move-source");
    assertThat(onSource.getSpec().placement.nodeName).isEqualTo("node-a");
    assertThat(onSource.getSpec().checkpointRef.name).isEqualTo("move");

    restoreEnds("move-source", RestorePhase.Completed, null, "node-a", 88, "2026-01-01T10:00:20Z");
    Migration failed = reconcile(m);
    assertFailed(failed, "PreflightPathMissing", "the restore elsewhere failed: PreflightPathMissing says why; restoring the"
        + " workload on its source node node-a (Restore move-source): done, it runs again on node node-a");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.RestoredOnSource);
    assertThat(failed.getStatus().node).isEqualTo("node-a");
    assertThat(failed.getStatus().restoredPid).isEqualTo(88);
    assertThat(failed.getStatus().frozenToRunningSeconds).isEqualTo(20);
    assertThat(checkpoint("move").getMetadata().getOwnerReferences()).as("goes with the Migration").isNotEmpty();
    assertThat(events()).contains("RestoringOnSource");
  }

  @Test
  void whenTheSourceCannotTakeItBackEitherTheCheckpointOutlivesTheMigration() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    checkpointEnds("move", CheckpointPhase.Completed, null, "2026-01-01T10:00:00Z");
    reconcile(m);
    restoreEnds("move", RestorePhase.Failed, "CriuRestoreFailed", null, null, "2026-01-01T10:00:05Z");
    reconcile(m);
    restoreEnds("move-source", RestorePhase.Failed, "CriuRestoreFailed", null, null, "2026-01-01T10:00:09Z");

    Migration failed = reconcile(m);
    assertFailed(failed, "CriuRestoreFailed", "that failed too (CriuRestoreFailed: CriuRestoreFailed says why). Checkpoint"
        + " move is kept when the Migration is deleted: restore it");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.NotRecovered);
    assertThat(checkpoint("move").getMetadata().getOwnerReferences()).as("the archive may be all that is left").isNullOrEmpty();
  }

  /** The agent lost mid-restore may have restored the tree: restoring on the source too could run it twice. */
  @Test
  void aRestoreWhoseAgentWasLostIsNotRepeatedOnTheSource() {
    profile("node-b", "sse4_2", "avx2");
    Migration m = reconcile(migration("move", s -> {}));
    checkpointEnds("move", CheckpointPhase.Completed, null, "2026-01-01T10:00:00Z");
    reconcile(m);
    restoreEnds("move", RestorePhase.Failed, "AgentUnavailable", "node-b", null, "2026-01-01T10:00:05Z");

    Migration failed = reconcile(m);
    assertFailed(failed, "AgentUnavailable", "Not restored on the source node, so that the workload never runs twice");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.Unknown);
    assertThat(restore("move-source")).isNull();
    assertThat(checkpoint("move").getMetadata().getOwnerReferences()).isNullOrEmpty();
  }

  @Test
  void aCheckpointOfThatNameThatIsNotTheMigrationsIsNotTaken() {
    profile("node-b", "sse4_2", "avx2");
    Checkpoint other = new Checkpoint();
    other.setMetadata(new ObjectMetaBuilder().withName("move").withNamespace(NS).build());
    other.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 1234)));
    client.resource(other).create();

    Migration m = reconcile(migration("move", s -> {}));
    assertFailed(m, "NameTaken", "a Checkpoint named 'move' exists already and is not this Migration's");
    assertThat(checkpoint("move").getSpec().target.process.pid).isEqualTo(1234);
  }

  private void profile(String name, String... flags) {
    client.resource(TestProfiles.node(name, Map.of(), flags)).create();
  }

  /** A node whose runtime restores pods from checkpoint images. */
  private void podProfile(String name) {
    NodeProfile profile = TestProfiles.node(name, Map.of(), "sse4_2", "avx2");
    profile.getSpec().runtime = new NodeProfileSpec.RuntimeInfo();
    profile.getSpec().runtime.name = "containerd";
    profile.getSpec().runtime.restore = new NodeProfileSpec.RuntimeRestore(true, NodeProfileSpec.RuntimeRestore.FROM_CONFIG,
        "restores", null);
    client.resource(profile).create();
  }

  private void runningPod(String name, String node) {
    client.resource(new PodBuilder().withNewMetadata().withName(name).withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName(node).addNewContainer().withName("app").endContainer().endSpec()
        .withNewStatus().withPhase("Running").addNewContainerStatus().withName("app").withContainerID("containerd://c1")
        .withNewState().withNewRunning().endRunning().endState().endContainerStatus().endStatus().build()).create();
  }
  /**
   * The Migration's pod checkpoint, taken on node-a and stored as its agent stores it: the manifest of
   * its one container in filesystem storage "fs", recorded in a Completed status.
   */
  private void podCheckpointStored(String name, String pod, String started) throws Exception {
    TestStorage.filesystem("fs", storageRoot).create(client);
    Checkpoint c = checkpoint(name);
    ArchiveLayout layout = new ArchiveLayout(NS, name, c.getMetadata().getUid());
    Manifest manifest = TestManifests.of(c, layout.containerArchiveKey("app", ArchiveCodec.ZSTD), 1);
    manifest.source.node = "node-a";
    manifest.source.podName = pod;
    manifest.source.containerName = "app";
    manifest.source.podSpec = Map.of("containers", List.of(Map.of("name", "app", "image", "sim")));
    manifest.nodeProfile = Map.of("arch", "x86_64", "cpu", Map.of("flags", List.of("avx2", "sse4_2")));
    byte[] json = manifest.toJson();
    try (var store = new FileSystemObjectStore(storageRoot)) {
      store.put(layout.containerManifestKey("app"), json);
    }
    ContainerCheckpointStatus app = new ContainerCheckpointStatus("app", "containerd://c1");
    app.archive = TestManifests.recorded(manifest, json);
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().node = "node-a";
    c.getStatus().startTime = started;
    c.getStatus().storage = "fs";
    c.getStatus().containers = List.of(app);
    client.resource(c).updateStatus();
  }

  private Migration migration(String name, Consumer<MigrationSpec> customize) {
    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withUid("uid-" + name).build());
    m.setSpec(new MigrationSpec(CheckpointTarget.process("node-a", 4242)));
    m.getSpec().placement = new RestorePlacement();
    customize.accept(m.getSpec());
    return client.resource(m).create();
  }

  /** The Migration's checkpoint ended as its agent would end it; the workload froze at {@code started}. */
  private void checkpointEnds(String name, CheckpointPhase phase, String reason, String started) {
    Checkpoint c = checkpoint(name);
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().node = "node-a";
    c.getStatus().startTime = started;
    c.getStatus().reason = reason;
    c.getStatus().message = reason == null ? "stored" : reason + " says why";
    client.resource(c).updateStatus();
  }

  private void restoreEnds(String name, RestorePhase phase, String reason, String node, Integer pid, String completed) {
    Restore r = restore(name);
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = phase;
    r.getStatus().node = node;
    r.getStatus().restoredPid = pid;
    if (pid != null) {
      r.getStatus().restoredProcess = new ProcessIdentity();
      r.getStatus().restoredProcess.node = node;
      r.getStatus().restoredProcess.pid = pid;
      r.getStatus().restoredProcess.startTicks = pid * 1000L;
      r.getStatus().restoredProcess.bootId = "boot-" + node;
    }
    r.getStatus().completionTime = completed;
    r.getStatus().reason = reason;
    r.getStatus().message = reason == null ? "restored" : reason + " says why";
    client.resource(r).updateStatus();
  }

  private Checkpoint checkpoint(String name) {
    return client.resources(Checkpoint.class).inNamespace(NS).withName(name).get();
  }

  private Restore restore(String name) {
    return client.resources(Restore.class).inNamespace(NS).withName(name).get();
  }

  private Migration reconcile(Migration m) {
    reconciler.reconcile(client.resource(m).get(), null);
    return client.resource(m).get();
  }

  private List<String> events() {
    return client.v1().events().inNamespace(NS).list().getItems().stream().map(Event::getReason).toList();
  }

  private void assertFailed(Migration m, String reason, String message) {
    assertThat(m.getStatus().phase).as(m.getStatus().message).isEqualTo(MigrationPhase.Failed);
    assertThat(m.getStatus().reason).isEqualTo(reason);
    assertThat(m.getStatus().message).contains(message);
    assertThat(events()).contains(reason);
  }
}
