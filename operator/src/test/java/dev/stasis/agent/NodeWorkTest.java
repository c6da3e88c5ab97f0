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
import dev.stasis.api.Conditions;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.criu.Criu;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.StorageBinding;
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
    restore = client.resource(restore).updateStatus();
    NodeRestoreWorker worker = new NodeRestoreWorker(nodeWork(Set.of(ProcessTargetPolicy.ALL)));

    worker.reconcile(restore, null);
    Restore ref = restore;
    Restore retrying = await().atMost(Duration.ofSeconds(30))
        .until(() -> client.resource(ref).get(), r -> r.getStatus().nextRetryTime != null);
    assertThat(retrying.getStatus().phase).isEqualTo(RestorePhase.Pending);
    assertThat(retrying.getStatus().attempts).isEqualTo(1);
    assertThat(retrying.getStatus().message)
        .startsWith("attempt 1/2 failed (StorageUnavailable): cannot read the manifest: ");

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

  private Checkpoint awaitTerminal(Checkpoint c) {
    return await().atMost(Duration.ofSeconds(10))
        .until(() -> client.resource(c).get(), now -> now.getStatus().phase.isTerminal());
  }

  private List<Event> events(String namespace) {
    return client.v1().events().inNamespace(namespace).list().getItems();
  }
}
