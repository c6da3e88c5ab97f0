package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.KubeletPodCgroup;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whose processes a namespace may checkpoint, decided by the agent on real processes: a process
 * belongs to a pod when it runs in that pod's cgroup, laid out here as a kubelet lays it out
 * ({@link KubeletPodCgroup}), for a Pod object on the real API server. This agent's admin allowed
 * host processes (processes in no pod) to one namespace only, {@code hosts-…}.
 */
class ProcessTargetsIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);

  @TempDir static Path dir;
  static KubernetesClient admin;
  static InProcessStasis stasis;
  static String node;
  static String storage;
  static String hosts;

  String mine;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    String suffix = UUID.randomUUID().toString().substring(0, 6);
    node = "targets-" + suffix;
    storage = "targets-" + suffix;
    hosts = TestControlPlane.newNamespace("hosts");
    TestStorage.filesystem(storage, dir.resolve("storage")).create(admin);
    stasis = InProcessStasis.on(admin)
        .agent(new AgentConfig(node, dir.resolve("work"), new Criu(Main.criuPath(null), Map.of()), Set.of(hosts)))
        .start();
    await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(node).get() != null);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
  }

  @BeforeEach
  void newNamespace() throws Exception {
    mine = TestControlPlane.newNamespace("mine");
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  /** The kubelet, the runtime, etcd: a node's own processes are in no pod, like this counter. */
  @Test
  void aHostProcessIsRefusedWhereNoAdminAllowedIt() throws Exception {
    Path count = dir.resolve("host-" + mine);
    var counter = counter(count);

    Checkpoint c = awaitCheckpoint(checkpoint(mine, "host", counter.pid()));
    assertRefused(c, "ProcessTargetNotAllowed", "PID " + counter.pid() + " on node " + node + " belongs to no pod",
        "--allow-host-processes");
    assertCounting(count);
    assertThat(c.getStatus().criuLogTail).as("CRIU never ran").isNull();
  }

  @Test
  void aHostProcessIsCheckpointedWhereAnAdminAllowedIt() throws Exception {
    var counter = counter(dir.resolve("allowed-" + mine));
    Checkpoint c = awaitCheckpoint(checkpoint(hosts, "host-" + mine, counter.pid()));
    assertThat(c.getStatus().phase).as(c.getStatus().reason + ": " + c.getStatus().message)
        .isEqualTo(CheckpointPhase.Completed);
  }

  /**
   * A process of a pod of the Checkpoint's own namespace on this node needs no allowance. Its
   * Restore does: the restored tree would run on the node in no pod, and this namespace may not
   * start host processes.
   */
  @Test
  void aProcessOfOneOfItsNamespacesPodsIsCheckpointedButNotRestoredOutsideAPod() throws Exception {
    var counter = counter(dir.resolve("pod-" + mine));
    inPodOf(mine, counter.pid());

    Checkpoint c = awaitCheckpoint(checkpoint(mine, "in-pod", counter.pid()));
    assertThat(c.getStatus().phase).as(c.getStatus().reason + ": " + c.getStatus().message)
        .isEqualTo(CheckpointPhase.Completed);

    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName("in-pod").withNamespace(mine).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef("in-pod");
    Restore created = admin.resource(r).create();
    Restore refused = await().atMost(TIMEOUT).until(() -> admin.resource(created).get(),
        x -> x.getStatus() != null && x.getStatus().phase != null && x.getStatus().phase.isTerminal());
    assertThat(refused.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(refused.getStatus().reason).isEqualTo("ProcessTargetNotAllowed");
    assertThat(refused.getStatus().message).contains("restoring a process checkpoint starts a process tree on node "
        + node + " outside any pod", "Nothing was restored");
    assertThat(refused.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(dir.resolve("work").resolve("restores").resolve(created.getMetadata().getUid())).doesNotExist();
    assertWarning(mine, "in-pod", "ProcessTargetNotAllowed");
  }

  /**
   * Another tenant's container: refused from a namespace of no standing, and as well from the one
   * whose admin allowed host processes, which is no licence for other namespaces' pods.
   */
  @Test
  void aProcessOfAPodOfAnotherNamespaceIsRefused() throws Exception {
    String other = TestControlPlane.newNamespace("other");
    Path count = dir.resolve("other-" + mine);
    var counter = counter(count);
    inPodOf(other, counter.pid());

    for (String namespace : List.of(mine, hosts)) {
      Checkpoint c = awaitCheckpoint(checkpoint(namespace, "theirs-" + mine, counter.pid()));
      assertRefused(c, "ProcessOfAnotherNamespace", "PID " + counter.pid() + " on node " + node
          + " belongs to a pod that is not one of namespace " + namespace + "'s");
    }
    assertCounting(count);
  }

  /** A pod of this namespace that is gone: its cgroup is not enough. */
  @Test
  void aProcessOfAPodThatIsGoneIsRefused() throws Exception {
    var counter = counter(dir.resolve("gone-" + mine));
    Pod pod = inPodOf(mine, counter.pid());
    admin.resource(pod).withGracePeriod(0).delete();
    await().atMost(TIMEOUT).until(() -> admin.resource(pod).get() == null);

    Checkpoint c = awaitCheckpoint(checkpoint(mine, "gone", counter.pid()));
    assertRefused(c, "ProcessOfAnotherNamespace", "belongs to a pod that is not one of namespace " + mine + "'s");
  }

  // --- helpers ---

  Workloads.Workload counter(Path count) throws Exception {
    var counter = Workloads.startInPidNamespace("counter", count.toString());
    cleanup.add(counter);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);
    return counter;
  }

  /** A Pod of {@code namespace} on this test's node, with {@code pid} in its container's cgroup. */
  Pod inPodOf(String namespace, long pid) throws Exception {
    Pod pod = admin.resource(new PodBuilder().withNewMetadata().withName("sim-" + UUID.randomUUID().toString().substring(0, 6))
        .withNamespace(namespace).endMetadata().withNewSpec().withNodeName(node)
        .addNewContainer().withName("solver").withImage("example.org/solver:1").endContainer().endSpec().build()).create();
    cleanup.add(KubeletPodCgroup.of(pod.getMetadata().getUid(), pid));
    return pod;
  }

  Checkpoint checkpoint(String namespace, String name, long pid) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) pid)));
    c.getSpec().storage = storage;
    return admin.resource(c).create();
  }

  Checkpoint awaitCheckpoint(Checkpoint c) {
    return await().atMost(TIMEOUT).until(() -> admin.resource(c).get(),
        x -> x.getStatus() != null && x.getStatus().phase != null && x.getStatus().phase.isTerminal());
  }

  void assertRefused(Checkpoint c, String reason, String... message) {
    assertThat(c.getStatus().phase).as(c.getStatus().message).isEqualTo(CheckpointPhase.Failed);
    assertThat(c.getStatus().reason).isEqualTo(reason);
    assertThat(c.getStatus().message).contains(message);
    assertThat(c.getStatus().attempts).as("refusals are not retried").isEqualTo(1);
    assertWarning(c.getMetadata().getNamespace(), c.getMetadata().getName(), reason);
  }

  void assertWarning(String namespace, String name, String reason) {
    await().atMost(TIMEOUT).until(() -> admin.v1().events().inNamespace(namespace).list().getItems().stream()
        .anyMatch(e -> reason.equals(e.getReason()) && "Warning".equals(e.getType())
            && name.equals(e.getInvolvedObject().getName())));
  }

  static void assertCounting(Path count) {
    long now = Workloads.count(count);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > now + 3);
  }
}
