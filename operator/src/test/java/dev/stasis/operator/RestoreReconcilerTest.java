package dev.stasis.operator;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.NodeProfileStatus;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.ScheduleRef;
import dev.stasis.api.StatusLimits;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.WorkGrants;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.testing.TestManifests;
import dev.stasis.testing.TestProfiles;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fast checks of the operator's Restore decisions, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class RestoreReconcilerTest {
  static final String NS = "jobs";
  KubernetesClient client;
  RestoreReconciler reconciler;
  TestingClock clock;
  @TempDir Path storageRoot;

  @BeforeEach
  void setUp() {
    clock = new TestingClock(Instant.now());
    reconciler = new RestoreReconciler(client, ClusterCache.reading(client), new EventRecorder(client, "operator", "test"),
        RetryPolicy.DEFAULT, clock);
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

  /** Restores placed before keep a deleted Checkpoint's archive until they end; a new one does not start. */
  @Test
  void aCheckpointBeingDeletedIsNotRestoredAnew() throws Exception {
    completedCheckpoint("c", m -> {});
    client.resources(Checkpoint.class).inNamespace(NS).withName("c").edit(c -> {
      c.getMetadata().setFinalizers(List.of("stasis.dev/test"));
      return c;
    });
    client.resources(Checkpoint.class).inNamespace(NS).withName("c").delete();
    assertThat(client.resources(Checkpoint.class).inNamespace(NS).withName("c").get().isMarkedForDeletion()).isTrue();

    assertFailed(reconcile(restore("r", "c", null)), "CheckpointDeleted", "Checkpoint 'c' is being deleted");
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

  @Test
  void scheduleRefWithAPodTakesThatPodsNewestCompletedCheckpoint() {
    podScheduled("sel-a-1", "a", "2025-03-10T10:00:00Z", "store-a1");
    podScheduled("sel-a-2", "a", "2025-03-10T11:00:00Z", "store-a2");
    podScheduled("sel-b-1", "b", "2025-03-10T12:00:00Z", "store-b1");
    // which one was chosen shows in the storage it then looks for
    assertFailed(reconcile(restoreOfSchedule("r", "nightly", "a")), "StorageNotFound", "'store-a2'");
  }

  @Test
  void scheduleRefOfSeveralPodsNeedsThePod() {
    podScheduled("sel-a-1", "a", "2025-03-10T10:00:00Z", "store-a1");
    podScheduled("sel-b-1", "b", "2025-03-10T12:00:00Z", "store-b1");
    assertFailed(reconcile(restoreOfSchedule("r", "nightly", null)), "PodRequired",
        "schedule 'nightly' has checkpoints of several pods (a, b): set spec.scheduleRef.pod to the one to restore");
    assertFailed(reconcile(restoreOfSchedule("c", "nightly", "c")), "NoCompletedCheckpoint",
        "schedule 'nightly' has no Completed checkpoint of pod 'c' in namespace jobs; it has some of pods a, b");
  }

  @Test
  void scheduleRefOfOnePodNeedsNoPod() {
    podScheduled("sel-a-1", "a", "2025-03-10T10:00:00Z", "store-a1");
    assertFailed(reconcile(restoreOfSchedule("r", "nightly", null)), "StorageNotFound", "'store-a1'");
  }

  /** A Completed checkpoint that a schedule with a selector took of {@code pod}. */
  private void podScheduled(String name, String pod, String completionTime, String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS)
        .withLabels(Map.of(Labels.SCHEDULE, "nightly", Labels.POD, pod)).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.pod(pod, null)));
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().completionTime = completionTime;
    c.getStatus().storage = storage;
    client.resource(c).updateStatus();
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
    return restoreOfSchedule(name, schedule, null);
  }

  private Restore restoreOfSchedule(String name, String schedule, String pod) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().scheduleRef = new ScheduleRef(schedule, pod);
    return client.resource(r).create();
  }

  @Test
  void placesOnTheSourceNodeAndSaysWhy() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();

    Restore r = reconcile(restore("r", "c", null));

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().node).isEqualTo("node-a");
    assertThat(Labels.node(r)).isEqualTo("node-a");
    assertThat(r.getStatus().placement.summary).isEqualTo("node-a (the source node); rejected: node-c missing CPU flags [avx2]");
    assertThat(r.getStatus().placement.candidates).isEqualTo(3);
    assertThat(events()).anyMatch(e -> e.getReason().equals("Placed") && e.getMessage().startsWith("restoring on node node-a"));
  }

  @Test
  void listsEveryRejectedNodeWhenNoneCanRunTheCheckpoint() throws Exception {
    completedCheckpoint("c", m -> m.tcpConnections = List.of("127.0.0.1:5000 -> 127.0.0.1:40000"));
    profiles();
    Restore r = restore("r", "c", null);
    r.getSpec().placement = new RestorePlacement();
    r.getSpec().placement.nodeSelector = Map.of("zone", "east");
    r = reconcile(client.resource(r).update());

    assertFailed(r, "NoCompatibleNode", "0/3 nodes can run this checkpoint: node-a labels do not match nodeSelector {zone=east}; "
        + "node-b labels do not match nodeSelector {zone=east}, checkpoint holds established TCP connections, which survive only on node node-a; "
        + "node-c checkpoint holds established TCP connections, which survive only on node node-a, missing CPU flags [avx2]");
    assertThat(r.getStatus().placement.rejected).extracting(n -> n.node).containsExactly("node-a", "node-b", "node-c");
  }

  /**
   * 5,000 NodeProfiles, none of which can run the checkpoint (2,500 lack a CPU flag, each of the
   * others has its own old CRIU): the status lists 50 nodes, counts them all by reason, and stays
   * far below etcd's limit for an object; the summary and the Event stay short too.
   */
  @Test
  void theStatusStaysSmallWhenFiveThousandNodesAreRejected() throws Exception {
    completedCheckpoint("c", m -> {});
    for (int i = 0; i < 5000; i++) {
      NodeProfile p = new NodeProfile();
      p.setMetadata(new ObjectMetaBuilder().withName("node-%04d".formatted(i)).build());
      p.setSpec(new NodeProfileSpec());
      p.getSpec().arch = "x86_64";
      p.getSpec().cpu = new NodeProfileSpec.CpuInfo();
      p.getSpec().criu = new NodeProfileSpec.CriuInfo();
      if (i % 2 == 0) {
        p.getSpec().cpu.flags = List.of("sse4_2");
        p.getSpec().criu.version = "4.2.1";
      } else {
        p.getSpec().cpu.flags = List.of("sse4_2", "avx2");
        p.getSpec().criu.version = "3.17." + i;
      }
      client.resource(p).create();
    }

    Restore r = reconcile(restore("r", "c", null));

    assertThat(r.getStatus().reason).isEqualTo("NoCompatibleNode");
    PlacementStatus placement = r.getStatus().placement;
    assertThat(placement.candidates).isEqualTo(5000);
    assertThat(placement.rejectedCount).isEqualTo(5000);
    assertThat(placement.rejected).hasSize(StatusLimits.MAX_LISTED);
    assertThat(placement.rejectedReasons).hasSize(StatusLimits.MAX_REASONS);
    assertThat(placement.rejectedReasons.get(0).reason).isEqualTo("missing CPU flags [avx2]");
    assertThat(placement.rejectedReasons.get(0).count).isEqualTo(2500);
    assertThat(placement.summary).startsWith("0/5000 nodes can run this checkpoint: 2500 nodes (node-0000, node-0002,"
        + " node-0004, …) missing CPU flags [avx2]; ").endsWith(" other combinations of reasons (status.placement.rejectedReasons)");
    assertThat(Serialization.asJson(r).length()).as("the Restore stays small").isLessThan(32 << 10);
    assertThat(events()).filteredOn(e -> e.getReason().equals("NoCompatibleNode"))
        .allSatisfy(e -> assertThat(e.getMessage()).hasSizeLessThanOrEqualTo(StatusLimits.MAX_MESSAGE_CHARS));
  }

  /** retryOtherNodes moves on after a failed pre-flight, but not forever: ten nodes, then it fails with the last reason. */
  @Test
  void retryingOtherNodesStopsAfterTenFailedPreflights() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    Restore r = restore("r", "c", null);
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = RestorePhase.Pending;
    r.getStatus().placement = new PlacementStatus();
    for (int i = 0; i < PlacementStatus.MAX_PREFLIGHT_FAILURES; i++) {
      r.getStatus().placement.preflightFailures.add(new PlacementStatus.PreflightFailure("node-%02d".formatted(i),
          "PreflightPathMissing", "missing /data/run42/log.lammps"));
    }
    r = reconcile(client.resource(r).updateStatus());

    assertFailed(r, "PreflightPathMissing", "the pre-flight failed on 10 nodes (node-00, node-01,");
    assertThat(r.getStatus().message).endsWith("as many as spec.placement.retryOtherNodes tries. The last: missing"
        + " /data/run42/log.lammps");
    assertThat(r.getStatus().node).as("placed nowhere").isNull();
    assertThat(r.getStatus().placement.preflightFailures).hasSize(PlacementStatus.MAX_PREFLIGHT_FAILURES);
  }

  /**
   * The placed Restore carries what node-a's agent needs, sealed to the key it published; when that
   * agent has a new key, the grant is sealed again to it.
   */
  @Test
  void theGrantOfAPlacedRestoreIsSealedAgainWhenTheNodesKeyChanges(@TempDir Path keys) throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    NodeKey first = NodeKey.inWorkDir(keys.resolve("first"));
    publishKey("node-a", first);
    Restore r = reconcile(restore("r", "c", null));
    assertThat(r.getStatus().node).isEqualTo("node-a");
    assertThat(WorkGrants.open(r.getStatus().grant, first, r, "node-a").storage()).isEqualTo("fs");

    NodeKey second = NodeKey.inWorkDir(keys.resolve("second"));
    publishKey("node-a", second);
    heartbeat("node-a", clock.now);
    r = reconcile(r);

    assertThat(r.getStatus().node).isEqualTo("node-a");
    assertThat(r.getStatus().grant.nodeKey).isEqualTo(second.fingerprint());
    assertThat(WorkGrants.open(r.getStatus().grant, second, r, "node-a").storage()).isEqualTo("fs");
  }

  /** The agent of node-a handed the Restore back after its pre-flight failed (retryOtherNodes). */
  @Test
  void aFailedPreflightMovesTheRestoreToTheNextNodeAndSaysSo() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    Restore r = handedBackBy("node-a", restore("r", "c", null));

    r = reconcile(r);

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().node).isEqualTo("node-b");
    assertThat(Labels.node(r)).isEqualTo("node-b");
    assertThat(r.getStatus().placement.preflightFailures).extracting(f -> f.node).containsExactly("node-a");
    assertThat(r.getStatus().placement.summary).contains("node-a pre-flight failed (PreflightPathMissing)");
    assertThat(events()).anyMatch(e -> e.getReason().equals("RetryingOnAnotherNode")
        && e.getMessage().startsWith("pre-flight failed on node node-a (PreflightPathMissing); trying node node-b next"));
  }

  @Test
  void whenPreflightsRuledOutTheLastNodeTheirFindingsAreTheFailure() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    Restore r = reconcile(handedBackBy("node-b", handedBackBy("node-a", restore("r", "c", null))));

    assertFailed(r, "PreflightPathMissing", "0/3 nodes can run this checkpoint: 2 nodes (node-a, node-b) pre-flight failed "
        + "(PreflightPathMissing); node-c missing CPU flags [avx2]. pre-flight on node node-b failed, no restore was attempted: "
        + "missing /data/run42/log.lammps");
    assertThat(r.getStatus().placement.preflightFailures).extracting(f -> f.node).containsExactly("node-a", "node-b");
  }

  /** The manifest cannot be read for now (here: a folder stands where it belongs); it is read again after the backoff. */
  @Test
  void aManifestThatCannotBeReadForNowIsReadAgainAfterTheBackoff() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    Checkpoint c = client.resources(Checkpoint.class).inNamespace(NS).withName("c").get();
    Path manifest = storageRoot.resolve(new ArchiveLayout(NS, "c", c.getMetadata().getUid()).manifestKey());
    Path moved = Files.move(manifest, storageRoot.resolve("manifest.json"));
    Files.createDirectory(manifest);

    Restore r = reconcile(restore("r", "c", null));

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().reason).isEqualTo("StorageUnavailable");
    assertThat(r.getStatus().message).startsWith("attempt 1/4 failed (StorageUnavailable): cannot read the checkpoint's manifest")
        .endsWith("; retrying in 10s");
    assertThat(r.getStatus().attempts).isEqualTo(1);
    assertThat(r.getStatus().checkpoint).isEqualTo("c");
    assertThat(Labels.node(r)).isNull();
    assertThat(events()).anyMatch(e -> e.getReason().equals("Retrying"));

    Files.delete(manifest);
    Files.move(moved, manifest);
    clock.now = clock.now.plusSeconds(10);
    r = reconcile(r);

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(Labels.node(r)).isEqualTo("node-a");
    assertThat(r.getStatus().attempts).isEqualTo(1);
  }

  @Test
  void noRestoreGoesToANodeWhoseAgentIsGone() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    heartbeat("node-a", clock.now);
    heartbeat("node-b", clock.now);
    assertThat(reconcile(restore("first", "c", null)).getStatus().node).isEqualTo("node-a");

    clock.now = clock.now.plus(Duration.ofMinutes(7));
    heartbeat("node-b", clock.now); // node-b's agent renewed its heartbeat; node-a's did not
    Restore r = reconcile(restore("r", "c", null));

    assertThat(r.getStatus().node).isEqualTo("node-b");
    assertThat(r.getStatus().placement.summary).contains("node-a the agent on node node-a was last seen 7 min ago");
  }

  /**
   * The operator judges by its own clock when it last saw a heartbeat change: an agent whose clock
   * lags ten minutes is alive while its heartbeat changes, and one whose clock runs ahead is gone
   * once its heartbeat stayed the same for five minutes.
   */
  @Test
  void anAgentsOwnClockDoesNotDecideWhetherItIsAlive() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    Instant lagging = clock.now.minus(Duration.ofMinutes(10));
    heartbeat("node-a", lagging);
    heartbeat("node-b", clock.now.plus(Duration.ofHours(1)));
    assertThat(reconcile(restore("first", "c", null)).getStatus().node).as("a lagging clock is no sign of death")
        .isEqualTo("node-a");

    clock.now = clock.now.plus(Duration.ofMinutes(6));
    heartbeat("node-a", lagging.plus(Duration.ofMinutes(6)));
    Restore west = restore("r", "c", null);
    west.getSpec().placement = new RestorePlacement();
    west.getSpec().placement.nodeSelector = Map.of("zone", "west"); // node-b only
    Restore r = reconcile(client.resource(west).update());

    assertFailed(r, "NoCompatibleNode", "node-b the agent on node node-b was last seen 6 min ago");
    assertThat(reconcile(restore("again", "c", null)).getStatus().node).isEqualTo("node-a");
  }

  @Test
  void aRestoreWaitingForAnAgentThatIsGoneIsPlacedAgain() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    heartbeat("node-a", clock.now);
    heartbeat("node-b", clock.now);
    Restore r = reconcile(restore("r", "c", null));
    assertThat(r.getStatus().node).isEqualTo("node-a");
    clock.now = clock.now.plus(Duration.ofMinutes(6));
    heartbeat("node-b", clock.now);

    r = reconcile(r);

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().node).isEqualTo("node-b");
    assertThat(Labels.node(r)).isEqualTo("node-b");
  }

  @Test
  void aRestoreTheGoneAgentHadBegunFailsSayingSo() throws Exception {
    completedCheckpoint("c", m -> {});
    profiles();
    heartbeat("node-a", clock.now);
    Restore r = reconcile(restore("r", "c", null));
    r.getStatus().phase = RestorePhase.Restoring;
    r = client.resource(r).updateStatus();
    clock.now = clock.now.plus(Duration.ofMinutes(6));

    assertFailed(reconcile(r), "AgentUnavailable", "in the middle of this restore. Whether its process started is known "
        + "only to that agent");
  }

  private void heartbeat(String node, Instant at) {
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    profile.setStatus(new NodeProfileStatus());
    profile.getStatus().heartbeatTime = at.toString();
    client.resource(profile).updateStatus();
  }

  private Restore handedBackBy(String node, Restore r) {
    r = client.resource(r).get();
    if (r.getStatus() == null) {
      r.setStatus(new RestoreStatus());
      r.getStatus().placement = new PlacementStatus();
    }
    r.getStatus().phase = RestorePhase.Pending;
    r.getStatus().node = null;
    r.getStatus().placement.preflightFailures.add(new PlacementStatus.PreflightFailure(node, "PreflightPathMissing",
        "pre-flight on node " + node + " failed, no restore was attempted: missing /data/run42/log.lammps"));
    return client.resource(r).updateStatus();
  }

  /** node-a: the source; node-b: alike; node-c: lacks a CPU flag. */
  private void profiles() {
    profile("node-a", Map.of(), "sse4_2", "avx2");
    profile("node-b", Map.of("zone", "west"), "sse4_2", "avx2");
    profile("node-c", Map.of("zone", "east"), "sse4_2");
  }

  private void publishKey(String node, NodeKey key) {
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    profile.getSpec().grantKey = key.publicKey();
    client.resource(profile).update();
  }

  private void profile(String name, Map<String, String> labels, String... flags) {
    client.resource(TestProfiles.node(name, labels, flags)).create();
  }

  /** A Completed Checkpoint taken on node-a whose manifest is in a filesystem storage. */
  private void completedCheckpoint(String name, Consumer<Manifest> customize) throws Exception {
    filesystemStorage();
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withUid("uid-" + name).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c = client.resource(c).create();

    ArchiveLayout layout = new ArchiveLayout(NS, name, c.getMetadata().getUid());
    Manifest m = TestManifests.of(c, layout.archiveKey(ArchiveCodec.ZSTD), 1);
    m.source.node = "node-a";
    m.nodeProfile = Map.of("arch", "x86_64", "cpu", Map.of("flags", List.of("avx2", "sse4_2")), "criu", Map.of("version", "4.2.1"));
    m.criu = new Manifest.Criu();
    m.criu.version = "4.2.1";
    customize.accept(m);
    byte[] json = m.toJson();
    try (var store = new FileSystemObjectStore(storageRoot)) {
      store.put(layout.manifestKey(), json);
    }
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().node = "node-a";
    c.getStatus().storage = "fs";
    c.getStatus().archive = TestManifests.recorded(m, json);
    client.resource(c).updateStatus();
  }

  /**
   * The only node that could restore a pod checkpoint restarts its container runtime (its kubelet
   * cannot reach it, and its agent says so): the Restore waits, Pending on no node with reason
   * RuntimeUnreachable and a retry time, rather than fail; once the runtime is back, the next try
   * places it. A runtime that does not restore fails the Restore at once, as before.
   */
  @Test
  void aPodRestoreWaitsForANodeWhoseRuntimeIsRestartingAndIsPlacedOnceItIsBack() throws Exception {
    TestStorage.filesystem("fs", storageRoot).with(spec -> {
      spec.registry = new RegistrySpec();
      spec.registry.url = "https://registry.example.com/stasis";
    }).create(client);
    completedPodCheckpoint(m -> {
      m.source.node = "node-a";
      m.nodeProfile = Map.of("arch", "x86_64", "cpu", Map.of("flags", List.of("sse4_2")), "criu", Map.of("version", "4.2.1"));
    });
    NodeProfile nodeA = TestProfiles.node("node-a", Map.of(), "sse4_2");
    nodeA.getSpec().runtime = new NodeProfileSpec.RuntimeInfo();
    nodeA.getSpec().runtime.name = "containerd";
    nodeA.getSpec().runtime.restore = new NodeProfileSpec.RuntimeRestore(false, NodeProfileSpec.RuntimeRestore.UNREACHABLE,
        "the kubelet cannot reach containerd (it reports its version as Unknown): the runtime is down or restarting",
        "start containerd on the node");
    client.resource(nodeA).create();

    Restore r = reconcile(restore("r", "web", null));

    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(r.getStatus().node).isNull();
    assertThat(r.getStatus().reason).isEqualTo("RuntimeUnreachable");
    assertThat(r.getStatus().message).startsWith("attempt 1/").contains("0/1 nodes can run this checkpoint: node-a"
        + " runtime unreachable: the kubelet cannot reach containerd");
    assertThat(r.getStatus().nextRetryTime).isNotNull();
    assertThat(events()).anyMatch(e -> e.getReason().equals("Retrying") && e.getMessage().contains("RuntimeUnreachable"));

    nodeA = client.resources(NodeProfile.class).withName("node-a").get();
    nodeA.getSpec().runtime.version = "2.3.4";
    nodeA.getSpec().runtime.restore = new NodeProfileSpec.RuntimeRestore(true, NodeProfileSpec.RuntimeRestore.FROM_CONFIG,
        "containerd 2.3.4 restores from checkpoint images: enable_experimental_restore_via_create = true", null);
    client.resource(nodeA).update();
    clock.now = Instant.parse(r.getStatus().nextRetryTime).plusSeconds(1);
    r = reconcile(r);

    assertThat(r.getStatus().node).isEqualTo("node-a");
    assertThat(r.getStatus().placement.summary).startsWith("node-a");

    nodeA = client.resources(NodeProfile.class).withName("node-a").get();
    nodeA.getSpec().runtime.restore = new NodeProfileSpec.RuntimeRestore(false, NodeProfileSpec.RuntimeRestore.FROM_CONFIG,
        "containerd 2.3.4 restores from checkpoint images only with enable_experimental_restore_via_create = true",
        "set it");
    client.resource(nodeA).update();
    assertFailed(reconcile(restore("off", "web", null)), "NoCompatibleNode", "node-a runtime cannot restore");
  }

  /**
   * After the agent pushed the checkpoint image, the pod spec in the bucket is rewritten (here: to
   * mount the node's root). The operator creates pods under its own rights, so it checks the
   * manifest against the Checkpoint's status before it makes a pod of it, and makes none.
   */
  @Test
  void aPodSpecRewrittenInTheStorageNeverBecomesAPod() throws Exception {
    filesystemStorage();
    Manifest m = completedPodCheckpoint(recorded -> {});
    ArchiveLayout layout = new ArchiveLayout(NS, "web", m.source.checkpointUid);
    m.source.podSpec = Map.of("containers", List.of(Map.of("name", "app", "image", "nginx",
            "volumeMounts", List.of(Map.of("name", "host", "mountPath", "/host")))),
        "volumes", List.of(Map.of("name", "host", "hostPath", Map.of("path", "/"))));
    try (var store = new FileSystemObjectStore(storageRoot)) {
      store.put(layout.containerManifestKey("app"), m.toJson());
    }
    Restore r = restore("r", "web", null);
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = RestorePhase.Restoring;
    r.getStatus().node = "node-a";
    r.getStatus().checkpoint = "web";
    r.getStatus().checkpointImages = List.of(new CheckpointImageStatus("app", "registry.example.com/jobs/web@sha256:"
        + "cd".repeat(32)));
    client.resource(r).updateStatus();

    assertFailed(reconcile(r), "ManifestTampered", "is not the one stored when the checkpoint was taken");
    assertThat(client.pods().inNamespace(NS).list().getItems()).as("no pod was created").isEmpty();
  }

  /**
   * A Completed checkpoint "web" of pod web-0's container "app" in storage "fs", its manifest
   * ({@code customize}d) stored and recorded in its status; the manifest.
   */
  private Manifest completedPodCheckpoint(Consumer<Manifest> customize) throws Exception {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("web").withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.pod("web-0", null)));
    c = client.resource(c).create();
    ArchiveLayout layout = new ArchiveLayout(NS, "web", c.getMetadata().getUid());
    Manifest m = TestManifests.of(c, layout.containerArchiveKey("app", ArchiveCodec.ZSTD), 1);
    m.source.podName = "web-0";
    m.source.containerName = "app";
    m.source.podSpec = Map.of("containers", List.of(Map.of("name", "app", "image", "nginx")));
    customize.accept(m);
    byte[] json = m.toJson();
    try (var store = new FileSystemObjectStore(storageRoot)) {
      store.put(layout.containerManifestKey("app"), json);
    }
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().node = m.source.node;
    c.getStatus().storage = "fs";
    ContainerCheckpointStatus app = new ContainerCheckpointStatus("app", "containerd://1");
    app.archive = TestManifests.recorded(m, json);
    c.getStatus().containers = List.of(app);
    client.resource(c).updateStatus();
    return m;
  }

  /**
   * A completed pod restore's checkpoint images stay for the storage's imageGracePeriod, then go; a
   * registry that cannot be reached is said (condition ImagesDeleted False, a Warning Event) and
   * tried again; a deleted Restore waits for it ten minutes at most, then lets go and says which
   * images remain.
   */
  @Test
  void checkpointImagesGoAfterTheGracePeriodAndARegistryThatCannotTakeItIsSaid() throws Exception {
    int port;
    try (var socket = new java.net.ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    TestStorage.filesystem("reg", storageRoot).with(spec -> {
      spec.registry = new RegistrySpec();
      spec.registry.url = "http://127.0.0.1:" + port + "/stasis";
      spec.registry.insecure = true;
      spec.registry.imageGracePeriod = "5m";
    }).create(client);
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("web").withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.pod("web-0", null)));
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().storage = "reg";
    client.resource(c).updateStatus();
    String image = "127.0.0.1:" + port + "/stasis/jobs@sha256:" + "cd".repeat(32);
    Restore r = restore("r", "web", null);
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = RestorePhase.Completed;
    r.getStatus().checkpoint = "web";
    r.getStatus().completionTime = clock.instant().toString();
    r.getStatus().checkpointImages = List.of(new CheckpointImageStatus("app", image));
    client.resource(r).updateStatus();

    var waiting = reconciler.reconcile(client.resource(r).get(), null);
    assertThat(waiting.getScheduleDelay()).hasValueSatisfying(ms -> assertThat(ms).isBetween(299_000L, 300_000L));
    assertThat(client.resource(r).get().getStatus().conditions).noneMatch(cd -> cd.getType().equals("ImagesDeleted"));

    clock.now = clock.now.plus(java.time.Duration.ofMinutes(6));
    var retrying = reconciler.reconcile(client.resource(r).get(), null);
    assertThat(retrying.getScheduleDelay()).hasValue(30_000L);
    Restore now = client.resource(r).get();
    assertThat(now.getStatus().conditions).anySatisfy(cd -> {
      assertThat(cd.getType() + " " + cd.getStatus() + " " + cd.getReason()).isEqualTo("ImagesDeleted False ImageNotDeleted");
      assertThat(cd.getMessage()).startsWith("could not delete " + image + " from the registry yet (the restored pod has"
          + " run for 300s, its storage's spec.registry.imageGracePeriod): cannot reach the registry http://127.0.0.1:"
          + port);
    });
    assertThat(events()).anyMatch(e -> e.getReason().equals("ImageNotDeleted") && e.getType().equals("Warning"));

    now.getMetadata().setFinalizers(List.of("restores.stasis.dev/finalizer"));
    now.getMetadata().setDeletionTimestamp(clock.instant().toString());
    assertThat(reconciler.cleanup(now, null).isRemoveFinalizer()).as("waits for the registry").isFalse();
    clock.now = clock.now.plus(java.time.Duration.ofMinutes(11));
    assertThat(reconciler.cleanup(now, null).isRemoveFinalizer()).as("lets go after ten minutes").isTrue();
    assertThat(events()).anyMatch(e -> e.getReason().equals("ImageNotDeleted")
        && e.getMessage().equals("gave up deleting checkpoint image " + image + " after 10 minutes: delete them in the"
            + " registry yourself; they hold container memory"));
  }

  /** Storage "fs", in {@link #storageRoot}. */
  private void filesystemStorage() {
    TestStorage.filesystem("fs", storageRoot).create(client);
  }

  private List<Event> events() {
    return client.v1().events().inNamespace(NS).list().getItems();
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
