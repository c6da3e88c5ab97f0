package dev.stasis.agent.work;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.checkpoint.NodeCheckpointWorker;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.agent.restore.NodeRestoreWorker;
import dev.stasis.testing.AssignedWork;
import dev.stasis.testing.Ports;
import dev.stasis.testing.TestAgent;
import dev.stasis.testing.TestStorage;
import dev.stasis.kube.RetryPolicy;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.api.Conditions;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.criu.Criu;
import dev.stasis.kube.Labels;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
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
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The node workers' own checks and retries (NodeWork), before any CRIU runs, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class NodeWorkTest {
  private static final Duration RETRY_BASE = Duration.ofMillis(300);

  KubernetesClient client;
  @TempDir Path work;
  @RegisterExtension final TestAgent agent = new TestAgent();

  /** Ends what a test started. */
  private AutoCloseable cleanup = () -> {};

  @AfterEach
  void stopWhatTheTestStarted() throws Exception {
    cleanup.close();
  }

  private NodeWork nodeWork(Set<String> hostProcessNamespaces) {
    var config = new AgentConfig("node-a", work, new Criu(work.resolve("no-criu"), Map.of()), hostProcessNamespaces)
        .withWorkLimits(2, RetryPolicy.withBase(RETRY_BASE));
    return agent.work(client, config);
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
      Checkpoint forged = AssignedWork.checkpoint(client, "node-a", "tenant", "forged", null, CheckpointPhase.Pending);
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
    Checkpoint abandoned = AssignedWork.checkpoint(client, "node-a", "ns", "abandoned", null, CheckpointPhase.Running);
    abandoned.getSpec().target.process.pid = (int) target.pid();
    abandoned = client.resource(abandoned).update();
    TestStorage.filesystem("fs", work.resolve("storage")).create(client);
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
    Checkpoint abandoned = AssignedWork.checkpoint(client, "node-a", "ns", "once", 0, CheckpointPhase.Running);
    new NodeCheckpointWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL))).reconcile(abandoned, null);

    Checkpoint failed = client.resource(abandoned).get();
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(events("ns")).noneMatch(e -> e.getReason().equals("Retrying"));
  }

  /** Its CRIU may have restored the tree before the agent died: a second attempt could make two copies. */
  @Test
  void aRestoreLeftRestoringByADeadAgentIsNeverRetried() {
    Restore restore = AssignedWork.restore(client, "node-a", "ns", "r", "c", RestorePhase.Restoring);
    restore.getSpec().backoffLimit = 3; // retries allowed, and still not tried again
    restore = client.resource(restore).update();

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
    TestStorage.s3("unreachable", "http://127.0.0.1:" + Ports.closed(), "checkpoints").credentials("default",
        Map.of(StorageBinding.ACCESS_KEY_ID, "key", StorageBinding.SECRET_ACCESS_KEY, "secret")).create(client);
    Checkpoint checkpoint = AssignedWork.checkpoint(client, "node-a", "ns", "c", null, CheckpointPhase.Completed);
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
    TestStorage.filesystem("fs", root).create(client);
    Checkpoint checkpoint = AssignedWork.checkpoint(client, "node-a", "ns", "c", null, CheckpointPhase.Completed);
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
    checkpoint.getStatus().archive.manifestSha256 = Sha256.hexOf(original);
    client.resource(checkpoint).updateStatus();
    manifest.archive.sha256 = "cd".repeat(32);
    manifest.archive.storedBytes = 4L;
    try (var store = new FileSystemObjectStore(root)) {
      store.put(layout.archiveKey(ArchiveCodec.ZSTD), new byte[] {6, 6, 6, 6});
      store.put(layout.manifestKey(), manifest.toJson());
    }
    Restore restore = AssignedWork.restore(client, "node-a", "ns", "r", "c", RestorePhase.Pending);

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
   * Work whose grant is sealed to a key this agent no longer has (its work folder was wiped): it
   * waits, untouched and without an attempt counted, for the operator to seal it again.
   */
  @Test
  void workWhoseGrantIsSealedToAnotherKeyWaitsForTheOperator() throws Exception {
    Checkpoint checkpoint = AssignedWork.checkpoint(client, "node-a", "ns", "c", null, CheckpointPhase.Pending);
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

  private Checkpoint awaitTerminal(Checkpoint c) {
    return await().atMost(Duration.ofSeconds(10))
        .until(() -> client.resource(c).get(), now -> now.getStatus().phase.isTerminal());
  }

  private List<Event> events(String namespace) {
    return client.v1().events().inNamespace(namespace).list().getItems();
  }
}
