package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.cli.Main;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The API server refuses the agent's status writes for a few seconds right after something on the
 * node happened that cannot be undone. The agent reaches the real API server through a
 * {@link FaultInjectingProxy} that answers 500 to those writes (an outage longer than the client's
 * own retries); the operator talks to it directly.
 */
class StatusWriteFaultsIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static KubernetesClient admin;
  static FaultInjectingProxy apiLink;
  static KubernetesClient agentClient;
  static InProcessStasis stasis;
  static String node;
  static String storage;

  String namespace;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    String suffix = UUID.randomUUID().toString().substring(0, 6);
    node = "writes-" + suffix;
    storage = "writes-" + suffix;
    TestStorage.filesystem(storage, dir.resolve("storage")).create(admin);
    apiLink = FaultInjectingProxy.toApiServer(admin);
    // The client gives up after two tries, 100 ms apart: an outage of seconds fails a write.
    agentClient = new KubernetesClientBuilder().withConfig(new ConfigBuilder(Config.empty())
        .withMasterUrl(apiLink.endpoint()).withRequestRetryBackoffLimit(1).build()).build();
    stasis = InProcessStasis.on(admin).agent(node, dir.resolve("work"), Main.criuPath(null), agentClient).start();
  }

  @AfterAll
  static void stop() throws Exception {
    if (stasis != null) stasis.close();
    if (agentClient != null) agentClient.close();
    if (apiLink != null) apiLink.close();
  }

  @BeforeEach
  void newNamespace() throws Exception {
    namespace = TestControlPlane.newNamespace("writes");
    apiLink.pass();
  }

  @AfterEach
  void cleanUp() throws Exception {
    apiLink.pass();
    for (AutoCloseable c : cleanup) {
      c.close();
    }
  }

  /**
   * CRIU restored the tree; writing Completed fails for three seconds. The tree runs, so the agent
   * keeps CRIU's note, log and pid file and writes Completed again, with the PID CRIU restored.
   */
  @Test
  void aRestoreWhoseCompletedWriteFailsIsCompletedWithItsPid() throws Exception {
    Path count = dir.resolve("restore-" + namespace);
    var counter = Workloads.startInPidNamespace("counter", count.toString());
    cleanup.add(counter);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);
    createCheckpoint("counter", counter.pid());
    assertThat(awaitCheckpoint("counter").getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    long checkpointed = Workloads.count(count);

    Restore wanted = new Restore();
    wanted.setMetadata(new ObjectMetaBuilder().withName("counter").withNamespace(namespace).build());
    wanted.setSpec(new RestoreSpec());
    wanted.getSpec().checkpointRef = new CheckpointRef("counter");
    Restore r = admin.resource(wanted).create();
    cleanup.add(() -> restoredCopiesOf(count).forEach(Workloads::kill));
    Path work = dir.resolve("work").resolve("restores").resolve(r.getMetadata().getUid());
    apiLink.fail500(request -> request.isStatusWrite("restores", namespace, "counter") && restoreFinished(work)
        && outage.during(Duration.ofSeconds(3)));

    Restore done = await().atMost(TIMEOUT).until(() -> admin.resource(r).get(),
        x -> x.getStatus() != null && x.getStatus().phase != null && x.getStatus().phase.isTerminal());
    assertThat(outage.refused()).as("writes after CRIU's restore were refused").isPositive();
    int restoredPid = Integer.parseInt(Files.readString(work.resolve("restore.pid")).trim());
    cleanup.add(() -> Workloads.kill(restoredPid));
    assertThat(done.getStatus().phase).as(done.getStatus().reason + ": " + done.getStatus().message)
        .isEqualTo(RestorePhase.Completed);
    assertThat(done.getStatus().restoredPid).isEqualTo(restoredPid);
    assertThat(done.getStatus().processState).isEqualTo("Running");
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > checkpointed + 3);

    Workloads.kill(restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(admin.resource(r).get().getStatus().processState));
    await().atMost(TIMEOUT).until(() -> !Files.exists(work));
  }

  /** An outage that begins with the first request asking whether it is on, and lasts {@code length}. */
  static final class Outage {
    private long began;
    private int refused;

    synchronized boolean during(Duration length) {
      long now = System.nanoTime();
      if (began == 0) {
        began = now;
      }
      boolean on = now - began < length.toNanos();
      refused += on ? 1 : 0;
      return on;
    }

    synchronized int refused() {
      return refused;
    }
  }

  final Outage outage = new Outage();

  /** The trees CRIU restored for this test, whatever the agent reported: the descendants of this JVM that count into {@code count}. */
  static List<Long> restoredCopiesOf(Path count) {
    return ProcessHandle.current().descendants()
        .filter(p -> p.info().arguments().map(args -> List.of(args).contains(count.toString())).orElse(false))
        .map(ProcessHandle::pid).toList();
  }

  private static boolean restoreFinished(Path work) {
    try {
      return Files.readString(work.resolve("restore.log")).contains("Restore finished successfully");
    } catch (IOException e) {
      return false;
    }
  }

  void createCheckpoint(String name, long pid) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) pid)));
    c.getSpec().storage = storage;
    c.getSpec().options = new CheckpointOptions();
    c.getSpec().options.leaveRunning = false;
    admin.resource(c).create();
  }

  Checkpoint awaitCheckpoint(String name) {
    return await().atMost(TIMEOUT).until(
        () -> admin.resources(Checkpoint.class).inNamespace(namespace).withName(name).get(),
        c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal());
  }
}
