package dev.stasis.operator;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.NodeProfileStatus;
import dev.stasis.api.PodTarget;
import dev.stasis.api.ArchiveStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.storage.FileSystemObjectStore;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.operator.retention.ChunkSweepLock;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.testing.TestManifests;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import dev.stasis.api.CheckpointOptions;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Fast checks of the operator's Checkpoint decisions, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class CheckpointReconcilerTest {
  static final String NS = "jobs";
  KubernetesClient client;
  TestingClock clock;
  CheckpointReconciler reconciler;

  @TempDir Path agentWorkDir;

  @BeforeEach
  void setUp() throws Exception {
    clock = new TestingClock(Instant.now());
    reconciler = new CheckpointReconciler(client, ClusterCache.reading(client), new EventRecorder(client, "operator", "test"),
        RetryPolicy.DEFAULT, new ChunkSweepLock(), clock);
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(NS).endMetadata().build()).create();
    NodeProfile node = new NodeProfile();
    node.setMetadata(new ObjectMetaBuilder().withName("node-a").build());
    node.setSpec(new NodeProfileSpec());
    // as every current agent: a deduplicating storage's Checkpoint is granted its namespace's chunk key
    node.getSpec().grantKey = NodeKey.inWorkDir(agentWorkDir).publicKey();
    client.resource(node).create();
  }

  @Test
  void assignsAValidCheckpointToItsNodesAgent() {
    storage("store", true, null);
    Checkpoint result = reconcile(checkpoint("ok", CheckpointTarget.process("node-a", 1234), null));
    assertThat(Labels.node(result)).isEqualTo("node-a");
    assertThat(result.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(result.getStatus().node).isEqualTo("node-a");
    assertThat(result.getStatus().storage).isEqualTo("store");
    assertThat(result.getStatus().target).as("kubectl get's TARGET column").isEqualTo("process/1234");
  }

  @Test
  void storageThatDoesNotTakeThisNamespace() {
    storage("team-b-only", true, null);
    CheckpointStorage s = client.resources(CheckpointStorage.class).withName("team-b-only").get();
    s.getSpec().allowedNamespaces = List.of("team-b");
    client.resource(s).update();
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), null)), "StorageNotAllowed",
        "does not take Checkpoints of namespace jobs (spec.allowedNamespaces: team-b)");
  }

  @Test
  void unknownNode() {
    storage("store", true, null);
    Checkpoint refused = reconcile(checkpoint("c", CheckpointTarget.process("node-x", 1234), null));
    assertFailed(refused, "NodeNotFound", "no Stasis agent runs on node 'node-x'");
    assertThat(refused.getStatus().target).as("a refused checkpoint still says what it was of").isEqualTo("process/1234");
  }

  @Test
  void namedStorageThatDoesNotExist() {
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), "nope")), "StorageNotFound",
        "CheckpointStorage 'nope' does not exist");
  }

  @Test
  void noDefaultStorage() {
    storage("store", false, null);
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), null)), "StorageNotFound",
        "no CheckpointStorage is marked default");
  }

  @Test
  void unavailableStorageWithoutRetries() {
    storage("down", true, "cannot reach S3 endpoint http://127.0.0.1:1: connection refused");
    Checkpoint c = checkpoint("c", CheckpointTarget.process("node-a", 1234), null);
    c.getSpec().backoffLimit = 0;
    assertFailed(reconcile(client.resource(c).update()), "StorageUnavailable", "connection refused");
  }

  /** Each try counts against spec.backoffLimit, with the agents' backoff (10 s, 20 s, ...) in between. */
  @Test
  void aStorageThatStaysDownFailsTheCheckpointAfterItsBackoffLimit() {
    storage("down", true, "cannot reach S3 endpoint http://127.0.0.1:1: connection refused");
    Checkpoint c = checkpoint("c", CheckpointTarget.process("node-a", 1234), null);
    c.getSpec().backoffLimit = 2;
    c = client.resource(c).update();

    var control = reconciler.reconcile(client.resource(c).get(), null);
    c = client.resource(c).get();
    assertWaitingToRetry(c, 1, "attempt 1/3 failed (StorageUnavailable): CheckpointStorage 'down' is unavailable: "
        + "cannot reach S3 endpoint http://127.0.0.1:1: connection refused; retrying in 10s");
    assertThat(control.getScheduleDelay()).contains(Duration.ofSeconds(10).toMillis());
    assertThat(events()).anyMatch(e -> e.getReason().equals("Retrying") && e.getType().equals("Warning"));

    clock.now = clock.now.plusSeconds(5);
    control = reconciler.reconcile(client.resource(c).get(), null);
    assertThat(client.resource(c).get().getStatus().attempts).as("not before its time").isEqualTo(1);
    assertThat(control.getScheduleDelay()).contains(Duration.ofSeconds(5).toMillis());

    clock.now = clock.now.plusSeconds(5);
    assertWaitingToRetry(reconcile(c), 2, "retrying in 20s");
    clock.now = clock.now.plusSeconds(20);
    c = reconcile(c);
    assertFailed(c, "StorageUnavailable",
        "failed after 3 attempts (spec.backoffLimit 2 reached); the last: CheckpointStorage 'down' is unavailable");
    assertThat(c.getStatus().attempts).isEqualTo(3);
    assertThat(c.getStatus().nextRetryTime).isNull();
    assertThat(c.getStatus().conditions).anyMatch(x -> x.getType().equals("Retrying") && x.getStatus().equals("False"));
  }

  @Test
  void aStorageBackBeforeTheRetryGetsTheCheckpointAssigned() {
    storage("down", true, "cannot reach S3 endpoint http://127.0.0.1:1: connection refused");
    Checkpoint c = reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), null));
    assertWaitingToRetry(c, 1, "retrying in 10s");
    CheckpointStorage back = client.resources(CheckpointStorage.class).withName("down").get();
    back.getStatus().phase = CheckpointStorageStatus.AVAILABLE;
    client.resource(back).updateStatus();

    clock.now = clock.now.plusSeconds(10);
    c = reconcile(c);

    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(Labels.node(c)).isEqualTo("node-a");
    assertThat(c.getStatus().attempts).as("the agent counts on from the operator's attempt").isEqualTo(1);
    assertThat(c.getStatus().nextRetryTime).isNull();
    assertThat(c.getStatus().conditions).as("until the agent ends it")
        .anyMatch(x -> x.getType().equals("Retrying") && x.getStatus().equals("True"));
  }

  private void assertWaitingToRetry(Checkpoint c, int attempts, String message) {
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(Labels.node(c)).as("not handed to an agent").isNull();
    assertThat(c.getStatus().reason).isEqualTo("StorageUnavailable");
    assertThat(c.getStatus().message).contains(message);
    assertThat(c.getStatus().attempts).isEqualTo(attempts);
    assertThat(Instant.parse(c.getStatus().nextRetryTime)).isAfter(clock.now);
    assertThat(c.getStatus().conditions).anyMatch(x -> x.getType().equals("Retrying") && x.getStatus().equals("True"));
  }

  private List<Event> events() {
    return client.v1().events().inNamespace(NS).list().getItems();
  }

  @Test
  void bothTargetsSet() {
    CheckpointTarget both = CheckpointTarget.process("node-a", 1234);
    both.pod = new PodTarget();
    both.pod.name = "p";
    assertFailed(reconcile(checkpoint("c", both, null)), "InvalidTarget", "exactly one");
  }

  @Test
  void pidOneIsNotAWorkload() {
    storage("store", true, null);
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1), null)), "InvalidPid", "2 or more");
  }

  @Test
  void aFailedCheckpointIsNotRetried() {
    Checkpoint failed = reconcile(checkpoint("c", CheckpointTarget.process("node-x", 1234), null));
    storage("store", true, null);
    NodeProfile late = new NodeProfile();
    late.setMetadata(new ObjectMetaBuilder().withName("node-x").build());
    client.resource(late).create();
    assertThat(reconcile(failed).getStatus().phase).isEqualTo(CheckpointPhase.Failed);
  }

  @Test
  void assignsAPodCheckpointToTheAgentOfThePodsNode() {
    storage("store", true, null);
    runningPod("web", "node-a", Map.of(), "app", "sidecar");
    Checkpoint result = reconcile(checkpoint("c", CheckpointTarget.pod("web", null), null));
    assertThat(result.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(Labels.node(result)).isEqualTo("node-a");
    assertThat(result.getStatus().containers).extracting(c -> c.name + "=" + c.containerID)
        .containsExactly("app=cri-o://id-app", "sidecar=cri-o://id-sidecar");
    assertThat(result.getStatus().target).isEqualTo("pod/web");

    Checkpoint one = reconcile(checkpoint("one", CheckpointTarget.pod("web", "sidecar"), null));
    assertThat(one.getStatus().containers).extracting(c -> c.name).containsExactly("sidecar");
  }

  @Test
  void severalNamedContainersOfAPod() {
    storage("store", true, null);
    runningPod("web", "node-a", Map.of(), "app", "sidecar", "log");
    CheckpointTarget two = CheckpointTarget.pod("web", null);
    two.pod.containers = List.of("log", "app");
    assertThat(reconcile(checkpoint("two", two, null)).getStatus().containers).extracting(c -> c.name)
        .containsExactly("log", "app");
    CheckpointTarget missing = CheckpointTarget.pod("web", null);
    missing.pod.containers = List.of("app", "db", "cache");
    assertFailed(reconcile(checkpoint("missing", missing, null)), "ContainerNotFound",
        "pod 'web' has no container 'db', 'cache' (its containers: app, sidecar, log)");
  }

  @Test
  void podsAreOnlyLookedUpInTheCheckpointsNamespace() {
    storage("store", true, null);
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("other").endMetadata().build()).create();
    var pod = runningPod("web", "node-a", Map.of(), "app");
    pod.getMetadata().setNamespace("other");
    pod.getMetadata().setResourceVersion(null);
    client.resource(pod).create();
    client.pods().inNamespace(NS).withName("web").delete();
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.pod("web", null), null)), "PodNotFound",
        "pod 'web' does not exist in namespace jobs");
  }

  @Test
  void podThatIsNotRunning() {
    storage("store", true, null);
    Pod pending = new PodBuilder().withNewMetadata().withName("web").withNamespace(NS).endMetadata()
        .withNewSpec().addNewContainer().withName("app").withImage("busybox").endContainer().endSpec().build();
    pending = client.resource(pending).create();
    pending.setStatus(new PodStatusBuilder().withPhase("Pending").build());
    client.resource(pending).updateStatus();
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.pod("web", null), null)), "PodNotRunning", "is Pending");
  }

  @Test
  void containerThatIsNotInThePod() {
    storage("store", true, null);
    runningPod("web", "node-a", Map.of(), "app");
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.pod("web", "db"), null)), "ContainerNotFound",
        "has no container 'db' (its containers: app)");
  }

  @Test
  void podsWithGpusAreRefused() {
    storage("store", true, null);
    runningPod("train", "node-a", Map.of("nvidia.com/gpu", new Quantity("1")), "app");
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.pod("train", null), null)), "GpuNotSupported",
        "nvidia.com/gpu in container app");
  }

  @Test
  void podOnANodeWithoutAnAgent() {
    storage("store", true, null);
    runningPod("web", "node-z", Map.of(), "app");
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.pod("web", null), null)), "NodeNotFound",
        "runs on node 'node-z', where no Stasis agent runs");
  }

  @Test
  void criuOptionsTheKubeletCannotTakeAreRefusedForPods() {
    storage("store", true, null);
    runningPod("web", "node-a", Map.of(), "app");
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(NS).withGeneration(1L).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.pod("web", null)));
    c.getSpec().options = new CheckpointOptions();
    c.getSpec().options.tcpEstablished = true;
    c.getSpec().options.leaveRunning = false;
    assertFailed(reconcile(client.resource(c).create()), "OptionNotSupported", "leaveRunning: false, tcpEstablished");
  }

  /** A pod as the kubelet reports it once its containers run; our mock has no kubelet, so we set the status. */
  private Pod runningPod(String name, String node, Map<String, Quantity> gpus, String... containers) {
    var spec = new PodBuilder().withNewMetadata().withName(name).withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName(node).endSpec();
    for (String container : containers) {
      spec.editSpec().addNewContainer().withName(container).withImage("busybox")
          .withNewResources().withLimits(gpus).endResources().endContainer().endSpec();
    }
    Pod pod = client.resource(spec.build()).create();
    var status = new PodStatusBuilder().withPhase("Running");
    for (String container : containers) {
      status.addNewContainerStatus().withName(container).withContainerID("cri-o://id-" + container)
          .withNewState().withNewRunning().endRunning().endState().endContainerStatus();
    }
    pod.setStatus(status.build());
    return client.resource(pod).updateStatus();
  }

  @Test
  void invalidTtl() {
    storage("store", true, null);
    Checkpoint c = checkpoint("c", CheckpointTarget.process("node-a", 1234), null);
    c.getSpec().ttl = "one day";
    client.resource(c).update();
    assertFailed(reconcile(c), "InvalidTtl", "spec.ttl: 'one day' is not a duration");
  }

  @Test
  void aFinishedCheckpointIsDeletedWhenItsTtlRunsOut() {
    Checkpoint c = finished("c", CheckpointPhase.Completed, "24h");
    Instant created = Instant.parse(c.getMetadata().getCreationTimestamp());
    clock.now = created.plus(Duration.ofHours(1));
    assertThat(reconciler.reconcile(c, null).getScheduleDelay()).contains(Duration.ofHours(23).toMillis());
    clock.now = created.plus(Duration.ofHours(24));
    reconciler.reconcile(c, null);
    assertThat(client.resource(c).get()).isNull();
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals("Expired") && e.getMessage().contains("ttl of 24h"));
  }

  @Test
  void aCheckpointBeingTakenOutlivesItsTtl() {
    Checkpoint c = finished("c", CheckpointPhase.Running, "1s");
    clock.now = clock.now.plus(Duration.ofHours(1));
    reconciler.reconcile(c, null);
    assertThat(client.resource(c).get()).isNotNull();
  }

  /**
   * A Checkpoint deleted (by a person, its ttl or a schedule's retention) while a Restore reads its
   * archive: the archive stays until the Restore is done, which the Checkpoint shows; then it goes.
   */
  @Test
  void anArchiveARestoreStillReadsIsKeptUntilTheRestoreEnds(@TempDir Path root) throws Exception {
    TestStorage.filesystem("fs", root).create(client);
    Checkpoint c = finished("c", CheckpointPhase.Completed, null);
    c.getStatus().storage = "fs";
    c = client.resource(c).updateStatus();
    ArchiveLayout layout = new ArchiveLayout(NS, "c", c.getMetadata().getUid());
    try (var store = new FileSystemObjectStore(root)) {
      store.put(layout.archiveKey(ArchiveCodec.ZSTD), new byte[] {1, 2, 3});
    }
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("r").withNamespace(NS).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef("c");
    restore = client.resource(restore).create();
    restore.setStatus(new RestoreStatus());
    restore.getStatus().phase = RestorePhase.Restoring;
    restore.getStatus().checkpoint = "c";
    restore = client.resource(restore).updateStatus();

    for (int pass = 0; pass < 2; pass++) {
      DeleteControl waits = reconciler.cleanup(client.resource(c).get(), null);
      assertThat(waits.isRemoveFinalizer()).isFalse();
      assertThat(waits.getScheduleDelay()).contains(CheckpointReconciler.READERS_POLL.toMillis());
    }
    assertThat(root.resolve(layout.archiveKey(ArchiveCodec.ZSTD))).exists();
    assertThat(client.resource(c).get().getStatus().conditions).anySatisfy(condition -> {
      assertThat(condition.getType()).isEqualTo("ArchiveInUse");
      assertThat(condition.getMessage()).isEqualTo("deletion waits: the archive is kept until Restore r (Restoring)"
          + " no longer needs it");
    });
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .filteredOn(e -> e.getReason().equals("ArchiveInUse")).as("one Event, not one per look").hasSize(1);

    restore.getStatus().phase = RestorePhase.Completed;
    client.resource(restore).updateStatus();
    assertThat(reconciler.cleanup(client.resource(c).get(), null).isRemoveFinalizer()).isTrue();
    assertThat(root.resolve(layout.archiveKey(ArchiveCodec.ZSTD))).doesNotExist();
  }

  /**
   * The operator, which alone reads the storage's Secret, seals what the checkpoint needs (the S3
   * credentials) to the key node-a's agent published; when that agent has a new key (its work folder
   * was wiped), the grant of its pending work is sealed again, to the new key.
   */
  @Test
  void theGrantIsSealedToTheNodesKeyAndSealedAgainWhenItChanges(@TempDir Path keys) throws Exception {
    s3Storage("s3", Map.of(StorageBinding.ACCESS_KEY_ID, "AKIA", StorageBinding.SECRET_ACCESS_KEY, "s3cr3t"));
    NodeKey first = NodeKey.inWorkDir(keys.resolve("first"));
    publishKey("node-a", first);
    Checkpoint c = reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), "s3"));
    assertThat(c.getStatus().grant.nodeKey).isEqualTo(first.fingerprint());
    assertThat(WorkGrants.open(c.getStatus().grant, first, c, "node-a").s3())
        .isEqualTo(new WorkGrants.Credentials("AKIA", "s3cr3t"));

    NodeKey second = NodeKey.inWorkDir(keys.resolve("second"));
    publishKey("node-a", second);
    c = reconcile(c);

    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(c.getStatus().grant.nodeKey).isEqualTo(second.fingerprint());
    assertThat(WorkGrants.open(c.getStatus().grant, second, c, "node-a").s3().secret()).isEqualTo("s3cr3t");
  }

  /** An agent older than the operator publishes no key: it is not handed the storage's credentials in the clear. */
  @Test
  void aNodeWhoseAgentPublishesNoKeyIsGrantedNothing() {
    NodeProfile old = client.resources(NodeProfile.class).withName("node-a").get();
    old.getSpec().grantKey = null;
    client.resource(old).update();
    s3Storage("s3", Map.of(StorageBinding.ACCESS_KEY_ID, "AKIA", StorageBinding.SECRET_ACCESS_KEY, "s3cr3t"));
    assertFailed(reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), "s3")), "NodeKeyMissing",
        "the agent on node node-a publishes no key in its NodeProfile (spec.grantKey)");
  }

  @Test
  void workOfAnAgentThatIsGoneFailsInsteadOfWaitingForever() {
    storage("store", true, null);
    Checkpoint pending = reconcile(checkpoint("pending", CheckpointTarget.process("node-a", 1234), null));
    heartbeat("node-a", clock.now.minus(Duration.ofMinutes(30))); // an agent whose clock lags half an hour
    assertThat(reconciler.reconcile(pending, null).getScheduleDelay()).as("checks again")
        .contains(AgentHeartbeat.CHECK_INTERVAL.toMillis());
    clock.now = clock.now.plus(AgentHeartbeat.CHECK_INTERVAL);
    heartbeat("node-a", clock.now.minus(Duration.ofMinutes(29)));
    reconciler.reconcile(pending, null);
    assertThat(client.resource(pending).get().getStatus().phase).as("its heartbeat changes").isEqualTo(CheckpointPhase.Pending);

    clock.now = clock.now.plus(Duration.ofMinutes(10));
    assertFailed(reconcile(pending), "AgentUnavailable",
        "the agent on node node-a was last seen 10 min ago");
    assertThat(client.resource(pending).get().getStatus().message).contains("the process was not touched");
  }

  @Test
  void aCheckpointTheGoneAgentWasTakingFailsSayingSo() {
    storage("store", true, null);
    Checkpoint c = reconcile(checkpoint("c", CheckpointTarget.process("node-a", 1234), null));
    heartbeat("node-a", clock.now);
    reconcile(c);
    c = client.resource(c).get();
    c.getStatus().phase = CheckpointPhase.Running;
    c = client.resource(c).updateStatus();
    clock.now = clock.now.plus(AgentHeartbeat.TIMEOUT).plusSeconds(1);
    assertFailed(reconcile(c), "AgentUnavailable", "in the middle of this checkpoint: nothing was stored as complete");
  }

  /**
   * The agent stored and recorded the archive (leaveRunning: false ends the workload only after
   * that) and then its node was lost: the archive may be all that is left of the workload, so the
   * checkpoint is Completed from the record once the storage holds what was recorded; when it does
   * not, the checkpoint fails for good.
   */
  @Test
  void aCheckpointWhoseAgentWasLostAfterItRecordedTheArchiveIsFinishedFromTheRecord(@TempDir Path root) throws Exception {
    TestStorage.filesystem("fs", root).create(client);
    Checkpoint kept = recordedRunning("kept", root);
    Checkpoint lost = recordedRunning("lost", root);
    Files.delete(root.resolve(new ArchiveLayout(NS, "lost", lost.getMetadata().getUid()).manifestKey()));
    heartbeat("node-a", clock.now);
    reconciler.reconcile(kept, null);
    assertThat(client.resource(kept).get().getStatus().phase).isEqualTo(CheckpointPhase.Running);

    clock.now = clock.now.plus(AgentHeartbeat.TIMEOUT).plusSeconds(1);
    Checkpoint done = reconcile(kept);
    assertThat(done.getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    assertThat(done.getStatus().message).startsWith("stored 6 bytes at file://")
        .contains("after it had stored and recorded this checkpoint's archive", "Completed from that record");
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals("Completed") && e.getInvolvedObject().getName().equals("kept"));
    assertFailed(reconcile(lost), "ArchiveMissing", "the storage no longer holds the archive: the checkpoint's manifest");
  }

  /** Running on node-a, with an archive of 6 bytes stored in {@code root} and recorded in the status. */
  private Checkpoint recordedRunning(String name, Path root) throws Exception {
    Checkpoint c = client.resource(checkpoint(name, CheckpointTarget.process("node-a", 1234), "fs")).get();
    ArchiveLayout layout = new ArchiveLayout(NS, name, c.getMetadata().getUid());
    Manifest m = TestManifests.of(c, layout.archiveKey(ArchiveCodec.ZSTD), 6);
    byte[] manifest = m.toJson();
    ArchiveStatus archive = TestManifests.recorded(m, manifest);
    try (var store = new FileSystemObjectStore(root)) {
      store.put(m.archive.key, "6bytes".getBytes());
      store.put(layout.manifestKey(), manifest);
      archive.uri = store.uri(m.archive.key);
    }
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Running;
    c.getStatus().node = "node-a";
    c.getStatus().storage = "fs";
    c.getStatus().archive = archive;
    return client.resource(c).updateStatus();
  }

  private void publishKey(String node, NodeKey key) {
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    profile.getSpec().grantKey = key.publicKey();
    client.resource(profile).update();
  }

  private void s3Storage(String name, Map<String, String> credentials) {
    TestStorage.s3(name, "http://127.0.0.1:1", "checkpoints").credentials("stasis-system", credentials).create(client);
  }

  private void heartbeat(String node, Instant at) {
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    profile.setStatus(new NodeProfileStatus());
    profile.getStatus().heartbeatTime = at.toString();
    client.resource(profile).updateStatus();
  }

  private Checkpoint finished(String name, CheckpointPhase phase, String ttl) {
    Checkpoint c = checkpoint(name, CheckpointTarget.process("node-a", 1234), null);
    c.getSpec().ttl = ttl;
    c = client.resource(c).update();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    return client.resource(c).updateStatus();
  }

  private Checkpoint checkpoint(String name, CheckpointTarget target, String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).build());
    c.setSpec(new CheckpointSpec(target));
    c.getSpec().storage = storage;
    return client.resource(c).create();
  }

  private void storage(String name, boolean isDefault, String unavailable) {
    CheckpointStorage s = TestStorage.filesystem(name, Path.of("/tmp/x")).with(spec -> spec.isDefault = isDefault)
        .create(client);
    if (unavailable != null) {
      s.setStatus(new CheckpointStorageStatus());
      s.getStatus().phase = CheckpointStorageStatus.UNAVAILABLE;
      s.getStatus().message = unavailable;
      client.resource(s).updateStatus();
    }
  }

  private Checkpoint reconcile(Checkpoint c) {
    reconciler.reconcile(client.resource(c).get(), null);
    return client.resource(c).get();
  }

  private void assertFailed(Checkpoint c, String reason, String message) {
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(c.getStatus().reason).isEqualTo(reason);
    assertThat(c.getStatus().message).contains(message);
    assertThat(c.getStatus().conditions).anyMatch(x -> x.getType().equals("Failed") && x.getStatus().equals("True"));
    assertThat(client.v1().events().inNamespace(c.getMetadata().getNamespace()).list().getItems())
        .anyMatch(e -> e.getReason().equals(reason) && e.getInvolvedObject().getName().equals(c.getMetadata().getName())
            && e.getType().equals("Warning"));
  }
}
