package dev.stasis.agent;

import dev.stasis.kube.RetryPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.api.Conditions;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.criu.Criu;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The node workers' own checks and retries (NodeWork), before any CRIU runs, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class NodeWorkTest {
  private static final Duration RETRY_BASE = Duration.ofMillis(300);

  KubernetesClient client;
  @TempDir Path work;
  private final AgentShutdown shutdown = new AgentShutdown();

  /** Ends what a test started. */
  private AutoCloseable cleanup = () -> {};

  @AfterEach
  void stopAgent() throws Exception {
    shutdown.begin();
    cleanup.close();
  }

  private NodeWork nodeWork(Set<String> hostProcessNamespaces) {
    var config = new AgentConfig("node-a", work, new Criu(work.resolve("no-criu"), Map.of()), hostProcessNamespaces)
        .withWorkLimits(2, RetryPolicy.withBase(RETRY_BASE));
    return new NodeWork(client, config, new EventRecorder(client, "agent", "node-a"), shutdown);
  }

  /**
   * Work handed over by something posing as the operator: the agent checks for itself. A process
   * in no pod (this test's own child), in a namespace no admin allowed host processes, is refused
   * before it waits for a slot, and a process checkpoint is not restored there either.
   */
  @Test
  void refusesHostProcessesWhereNoAdminAllowedThem() throws Exception {
    Process hostProcess = new ProcessBuilder("sleep", "600").start();
    try {
      Checkpoint forged = checkpointAssigned("tenant", "forged", null, CheckpointPhase.Pending);
      forged.getSpec().target.process.pid = (int) hostProcess.pid();
      forged = client.resource(forged).update();
      new NodeCheckpointWorker(nodeWork(Set.of("another-namespace"))).reconcile(forged, null);

      Checkpoint result = awaitTerminal(forged);
      assertThat(result.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
      assertThat(result.getStatus().reason).isEqualTo("ProcessTargetNotAllowed");
      assertThat(result.getStatus().message).contains("PID " + hostProcess.pid() + " on node node-a belongs to no pod",
          "--allow-host-processes");
      assertThat(result.getStatus().attempts).as("policy refusals are not retried").isEqualTo(1);
      assertThat(client.v1().events().inNamespace("tenant").list().getItems())
          .anyMatch(e -> e.getReason().equals("ProcessTargetNotAllowed") && e.getSource().getComponent().equals("agent"));
    } finally {
      hostProcess.destroyForcibly().waitFor();
    }
  }

  /**
   * A checkpoint an agent left Running when it died is an attempt that failed for a transient
   * reason: it goes back to Pending until the backoff passed, then runs again; this time it meets
   * bad input (no CRIU on the node), which is not retried, and the final failure names the count.
   */
  @Test
  void abandonedWorkIsRetriedAfterTheBackoffAndBadInputThenEndsIt() throws Exception {
    Process target = new ProcessBuilder("sleep", "600").start();
    cleanup = () -> target.destroyForcibly().waitFor();
    Checkpoint abandoned = checkpointAssigned("ns", "abandoned", null, CheckpointPhase.Running);
    abandoned.getSpec().target.process.pid = (int) target.pid();
    abandoned = client.resource(abandoned).update();
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName("fs").build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().filesystem = new FileSystemStorage(work.resolve("storage").toString());
    client.resource(storage).create();
    abandoned.getStatus().storage = "fs";
    abandoned = client.resource(abandoned).updateStatus();
    var meta = abandoned.getMetadata();
    Path leftover = work.resolve("storage").resolve(new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid())
        .archiveKey(ArchiveCodec.ZSTD));
    Files.createDirectories(leftover.getParent());
    Files.writeString(leftover, "half an archive the dead agent uploaded");

    NodeCheckpointWorker worker = new NodeCheckpointWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL)));
    worker.reconcile(abandoned, null);
    assertThat(leftover).as("the dead agent's partial upload is deleted").doesNotExist();

    Checkpoint retrying = client.resource(abandoned).get();
    CheckpointStatus status = retrying.getStatus();
    assertThat(status.phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(status.reason).isEqualTo("AgentRestarted");
    assertThat(status.nextRetryTime).isNotNull();
    assertThat(status.message).startsWith("attempt 1/4 failed (AgentRestarted): the agent on node node-a restarted")
        .endsWith("retrying in 300ms");
    var condition = Conditions.find(status.conditions, Conditions.RETRYING);
    assertThat(condition.getStatus()).isEqualTo("True");
    assertThat(condition.getReason()).isEqualTo("AgentRestarted");
    assertThat(events("ns")).anyMatch(e -> e.getReason().equals("Retrying") && e.getType().equals("Warning")
        && e.getMessage().startsWith("attempt 1/4 failed (AgentRestarted)"));

    // Before the backoff passed the agent only comes back later; then it takes the checkpoint again.
    var early = worker.reconcile(retrying, null);
    assertThat(early.getScheduleDelay()).hasValueSatisfying(ms -> assertThat(ms).isBetween(1L, RETRY_BASE.toMillis()));
    await().pollDelay(RETRY_BASE).atMost(Duration.ofSeconds(5)).until(() -> RetryPolicy.untilRetry(status, Instant.now()).isEmpty());
    worker.reconcile(client.resource(abandoned).get(), null);

    Checkpoint failed = awaitTerminal(abandoned);
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("CriuMissing");
    assertThat(failed.getStatus().attempts).isEqualTo(2);
    assertThat(failed.getStatus().message).startsWith("failed after 2 attempts; the last: CRIU is not installed");
    assertThat(failed.getStatus().nextRetryTime).isNull();
    assertThat(Conditions.find(failed.getStatus().conditions, Conditions.RETRYING).getStatus()).isEqualTo("False");
  }

  @Test
  void backoffLimitZeroFailsAtTheFirstTransientFailure() {
    Checkpoint abandoned = checkpointAssigned("ns", "once", 0, CheckpointPhase.Running);
    new NodeCheckpointWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL))).reconcile(abandoned, null);

    Checkpoint failed = client.resource(abandoned).get();
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(events("ns")).noneMatch(e -> e.getReason().equals("Retrying"));
  }

  /** Its CRIU may have restored the tree before the agent died: a second attempt could make two copies. */
  @Test
  void aRestoreLeftRestoringByADeadAgentIsNeverRetried() {
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("ns").endMetadata().build())
        .create();
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("r").withNamespace("ns")
        .withLabels(Map.of(Labels.NODE, "node-a")).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef("c");
    restore.getSpec().backoffLimit = 3;
    restore = client.resource(restore).create();
    restore.setStatus(new RestoreStatus());
    restore.getStatus().phase = RestorePhase.Restoring;
    restore.getStatus().node = "node-a";
    restore.getStatus().attempts = 1;
    restore = client.resource(restore).updateStatus();

    new NodeRestoreWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL))).reconcile(restore, null);

    Restore failed = client.resource(restore).get();
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(failed.getStatus().attempts).isEqualTo(1);
  }

  /**
   * The storage does not answer while the agent reads the checkpoint's manifest: nothing was
   * restored yet, so the restore is tried again after the backoff, and fails once backoffLimit is used up.
   */
  @Test
  void aRestoreIsRetriedWhenStorageFailsBeforeCriuRan() throws Exception {
    client.resource(new SecretBuilder().withNewMetadata().withName("s3").withNamespace("default").endMetadata()
        .addToStringData(StorageBinding.ACCESS_KEY_ID, "key").addToStringData(StorageBinding.SECRET_ACCESS_KEY, "secret")
        .build()).create();
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName("unreachable").build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().s3 = new S3Storage();
    storage.getSpec().s3.endpoint = "http://127.0.0.1:" + closedPort();
    storage.getSpec().s3.bucket = "checkpoints";
    storage.getSpec().s3.pathStyle = true;
    storage.getSpec().s3.credentialsSecret = new SecretReference("s3", "default");
    client.resource(storage).create();
    Checkpoint checkpoint = checkpointAssigned("ns", "c", null, CheckpointPhase.Completed);
    checkpoint.getStatus().storage = "unreachable";
    checkpoint.getStatus().archive = new ArchiveStatus();
    checkpoint.getStatus().archive.sha256 = "ab".repeat(32);
    checkpoint.getStatus().archive.storedBytes = 1L;
    checkpoint.getStatus().archive.sizeBytes = 1L;
    checkpoint.getStatus().archive.manifestSha256 = "cd".repeat(32);
    client.resource(checkpoint).updateStatus();

    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("r").withNamespace("ns")
        .withLabels(Map.of(Labels.NODE, "node-a")).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef("c");
    restore.getSpec().backoffLimit = 1;
    restore = client.resource(restore).create();
    restore.setStatus(new RestoreStatus());
    restore.getStatus().phase = RestorePhase.Pending;
    restore.getStatus().node = "node-a";
    restore.getStatus().checkpoint = "c";
    NodeRestoreWorker worker = new NodeRestoreWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL)));
    // What the operator hands this node for the restore: the storage's credentials, sealed to its key.
    restore.getStatus().grant = WorkGrants.seal(new WorkGrants.Grant("unreachable",
        new WorkGrants.Credentials("key", "secret"), null, null, List.of()), restore, "node-a",
        NodeKey.inWorkDir(work).publicKey());
    restore = client.resource(restore).updateStatus();

    worker.reconcile(restore, null);
    Restore ref = restore;
    Restore retrying = await().atMost(Duration.ofSeconds(30))
        .until(() -> client.resource(ref).get(), r -> r.getStatus().nextRetryTime != null);
    assertThat(retrying.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(retrying.getStatus().attempts).isEqualTo(1);
    assertThat(retrying.getStatus().message)
        .startsWith("attempt 1/2 failed (StorageUnavailable): cannot read the checkpoint's manifest: ");

    await().pollDelay(RETRY_BASE).atMost(Duration.ofSeconds(5))
        .until(() -> RetryPolicy.untilRetry(retrying.getStatus(), Instant.now()).isEmpty());
    worker.reconcile(client.resource(restore).get(), null);
    Restore failed = await().atMost(Duration.ofSeconds(30))
        .until(() -> client.resource(ref).get(), r -> r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("StorageUnavailable");
    assertThat(failed.getStatus().attempts).isEqualTo(2);
    assertThat(failed.getStatus().message).startsWith("failed after 2 attempts (spec.backoffLimit 1 reached); the last: ");
  }

  /**
   * Between the operator's placement and the agent's turn, someone who can write the storage swaps
   * in other images and rewrites the manifest to match: the agent checks the manifest against the
   * Checkpoint's status itself and refuses, before CRIU is even looked for (this node has none: a
   * manifest it believed would end in CriuMissing), and does not try again.
   */
  @Test
  void aManifestRewrittenInTheStorageIsRefusedByTheAgentItself() throws Exception {
    Path root = work.resolve("storage");
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName("fs").build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().filesystem = new FileSystemStorage(root.toString());
    client.resource(storage).create();
    Checkpoint checkpoint = checkpointAssigned("ns", "c", null, CheckpointPhase.Completed);
    ArchiveLayout layout = new ArchiveLayout("ns", "c", checkpoint.getMetadata().getUid());
    Manifest manifest = new Manifest();
    manifest.source = new Manifest.Source();
    manifest.source.namespace = "ns";
    manifest.source.checkpointName = "c";
    manifest.source.checkpointUid = checkpoint.getMetadata().getUid();
    manifest.archive = new Manifest.Archive();
    manifest.archive.key = layout.archiveKey(ArchiveCodec.ZSTD);
    manifest.archive.codec = ArchiveCodec.ZSTD;
    manifest.archive.sha256 = "ab".repeat(32);
    manifest.archive.storedBytes = 3L;
    byte[] original = manifest.toJson();
    checkpoint.getStatus().storage = "fs";
    checkpoint.getStatus().archive = new ArchiveStatus();
    checkpoint.getStatus().archive.sha256 = manifest.archive.sha256;
    checkpoint.getStatus().archive.storedBytes = 3L;
    checkpoint.getStatus().archive.sizeBytes = 3L;
    checkpoint.getStatus().archive.manifestSha256 = Sha256.hex(Sha256.newDigest().digest(original));
    client.resource(checkpoint).updateStatus();
    manifest.archive.sha256 = "cd".repeat(32);
    manifest.archive.storedBytes = 4L;
    try (var store = new FileSystemObjectStore(root)) {
      store.put(layout.archiveKey(ArchiveCodec.ZSTD), new byte[] {6, 6, 6, 6});
      store.put(layout.manifestKey(), manifest.toJson());
    }
    Restore restore = restoreAssigned("r", "c");

    new NodeRestoreWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL))).reconcile(restore, null);

    Restore failed = await().atMost(Duration.ofSeconds(30))
        .until(() -> client.resource(restore).get(), r -> r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("ManifestTampered");
    assertThat(failed.getStatus().message).contains("is not the one stored when the checkpoint was taken");
    assertThat(failed.getStatus().attempts).as("not retried").isEqualTo(1);
    assertThat(events("ns")).anyMatch(e -> e.getReason().equals("ManifestTampered"));
  }

  /**
   * The agent died during a pod checkpoint, and the kubelet's archive of it (all the container's
   * memory) is left in the kubelet's folder: the next agent deletes that one, but not the archive
   * of pod web of namespace a-b (whose name the old pattern checkpoint-web_a-* matched), nor one of
   * another container, nor one from before this attempt started.
   */
  @Test
  void aDeadAgentsKubeletArchiveIsDeletedButNoOtherNamespacesOrContainers() throws Exception {
    Path kubeletDir = Files.createDirectories(work.resolve("kubelet-checkpoints"));
    var kubelet = new KubeletSettings(java.net.URI.create("https://127.0.0.1:1"), work.resolve("token"),
        work.resolve("ca.crt"), false, kubeletDir, Duration.ofSeconds(1));
    var config = new AgentConfig("node-a", work, new Criu(work.resolve("no-criu"), Map.of()), Set.of(), kubelet)
        .withWorkLimits(2, RetryPolicy.withBase(RETRY_BASE));
    Checkpoint abandoned = checkpointAssigned("a", "web", null, CheckpointPhase.Running);
    abandoned.getSpec().target = CheckpointTarget.pod("web", "app");
    abandoned = client.resource(abandoned).update();
    abandoned.getStatus().containers = List.of(new ContainerCheckpointStatus("app", "cri-o://1"));
    abandoned.getStatus().startTime = "2026-12-05T10:00:00Z";
    abandoned = client.resource(abandoned).updateStatus();
    Path ours = Files.writeString(kubeletDir.resolve("checkpoint-web_a-app-2026-12-05T10:00:02Z.tar"), "memory");
    List<Path> theirs = List.of(
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-b-app-2026-12-05T10:00:02Z.tar"), "namespace a-b's"),
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-sidecar-2026-12-05T10:00:02Z.tar"), "another container"),
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-app-2026-12-04T10:00:02Z.tar"), "an older attempt's"));

    new NodeCheckpointWorker(new NodeWork(client, config, new EventRecorder(client, "agent", "node-a"), shutdown))
        .reconcile(abandoned, null);

    assertThat(client.resource(abandoned).get().getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(ours).doesNotExist();
    assertThat(theirs).allMatch(Files::exists);
  }

  /**
   * Work whose grant is sealed to a key this agent no longer has (its work folder was wiped): it
   * waits, untouched and without an attempt counted, for the operator to seal it again.
   */
  @Test
  void workWhoseGrantIsSealedToAnotherKeyWaitsForTheOperator() throws Exception {
    Checkpoint checkpoint = checkpointAssigned("ns", "c", null, CheckpointPhase.Pending);
    checkpoint.getStatus().grant = WorkGrants.seal(new WorkGrants.Grant("fs", null, null, null, List.of()), checkpoint,
        "node-a", NodeKey.inWorkDir(work.resolve("an-earlier-key")).publicKey());
    checkpoint = client.resource(checkpoint).updateStatus();

    var control = new NodeCheckpointWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL))).reconcile(checkpoint, null);

    assertThat(control.getScheduleDelay()).contains(NodeJob.GRANT_WAIT.toMillis());
    Checkpoint waiting = client.resource(checkpoint).get();
    assertThat(waiting.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(waiting.getStatus().attempts).isNull();
  }

  @Test
  void placesInLineReadAsPeopleSayThem() {
    assertThat(List.of(1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111).stream().map(NodeWork::ordinal))
        .containsExactly("1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th");
  }

  private static int closedPort() throws Exception {
    try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  private Checkpoint checkpointAssigned(String namespace, String name, Integer backoffLimit, CheckpointPhase phase) {
    if (client.namespaces().withName(namespace).get() == null) {
      client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(namespace).endMetadata().build())
          .create();
    }
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace)
        .withLabels(Map.of(Labels.NODE, "node-a")).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", (int) ProcessHandle.current().pid())));
    c.getSpec().backoffLimit = backoffLimit;
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().node = "node-a";
    c.getStatus().storage = "any";
    if (phase == CheckpointPhase.Running) {
      c.getStatus().attempts = 1;
    }
    return client.resource(c).updateStatus();
  }

  /** A Restore of {@code checkpoint} the operator placed on node-a. */
  private Restore restoreAssigned(String name, String checkpoint) {
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("ns")
        .withLabels(Map.of(Labels.NODE, "node-a")).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    restore = client.resource(restore).create();
    restore.setStatus(new RestoreStatus());
    restore.getStatus().phase = RestorePhase.Pending;
    restore.getStatus().node = "node-a";
    restore.getStatus().checkpoint = checkpoint;
    return client.resource(restore).updateStatus();
  }

  private Checkpoint awaitTerminal(Checkpoint c) {
    return await().atMost(Duration.ofSeconds(10))
        .until(() -> client.resource(c).get(), now -> now.getStatus().phase.isTerminal());
  }

  private List<Event> events(String namespace) {
    return client.v1().events().inNamespace(namespace).list().getItems();
  }
}
