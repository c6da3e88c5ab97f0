package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProgressStatus;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.kube.Labels;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.ProgressSeen;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestCa;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestingKubelet;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.TaintBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pod checkpoints where the real node (PodCheckpointOnNodeIT) cannot go: a kubelet whose
 * ContainerCheckpoint feature gate is off, pods the operator refuses, and a node drain (the
 * machine's one node must stay schedulable for the other tests). The kubelet double checkpoints a
 * real process with real CRIU and authorizes the agent's ServiceAccount token against config/rbac.
 */
class PodCheckpointIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static final String NODE = "pod-" + UUID.randomUUID().toString().substring(0, 6);
  static final String OTHER_NODE = NODE + "-other";
  /** Memory of the large pod's container: a kubelet archive of about this size, which does not compress. */
  static final int BIG_MIB = 512;
  /** The link to S3 for the large pod's archive: ~16 s for it, about seven progress writes. */
  static final long BIG_LINK_BYTES_PER_SECOND = 32L << 20;

  @TempDir static Path dir;
  static KubernetesClient admin;
  static TestingKubelet kubelet;
  static TestingKubelet otherKubelet;
  static InProcessStasis stasis;
  static String storage;
  static Path storageRoot;

  String namespace;
  Workloads.Workload app;
  Workloads.Workload sidecar;

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    new Kubectl(TestControlPlane.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    TestCa ca = TestCa.create(dir.resolve("ca"), "cluster");
    kubelet = TestingKubelet.start(NODE, admin, Main.criuPath(null), ca.issue("kubelet"), dir.resolve(NODE));
    otherKubelet = TestingKubelet.start(OTHER_NODE, admin, Main.criuPath(null), ca.issue("kubelet-2"),
        dir.resolve(OTHER_NODE));
    Path agentToken = Files.writeString(dir.resolve("agent.token"), token("stasis-system", "stasis-agent"));
    stasis = InProcessStasis.on(admin)
        .agent(agent(NODE, kubelet, agentToken, ca), admin)
        .agent(agent(OTHER_NODE, otherKubelet, agentToken, ca), admin)
        .start();
    await().atMost(TIMEOUT).until(() -> Stream.of(NODE, OTHER_NODE)
        .allMatch(n -> admin.resources(NodeProfile.class).withName(n).get() != null));
    storage = "pods-" + NODE;
    storageRoot = dir.resolve("storage");
    TestStorage.filesystem(storage, storageRoot).create(admin);
  }

  static AgentConfig agent(String node, TestingKubelet kubelet, Path token, TestCa ca) throws Exception {
    var settings = new KubeletSettings(kubelet.url(), token, ca.certificate(), false, kubelet.checkpointDir(),
        Duration.ofSeconds(2));
    return new AgentConfig(node, dir.resolve(node).resolve("work"), new Criu(Main.criuPath(null), Map.of()), Set.of(),
        settings);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
    if (kubelet != null) kubelet.close();
    if (otherKubelet != null) otherKubelet.close();
  }

  @BeforeEach
  void startWorkloads() throws Exception {
    namespace = TestControlPlane.newNamespace("podckpt");
    app = Workloads.startInPidNamespace("counter", dir.resolve(namespace + "-app.txt").toString());
    sidecar = Workloads.startInPidNamespace("counter", dir.resolve(namespace + "-sidecar.txt").toString());
  }

  @AfterEach
  void stopWorkloads() {
    app.close();
    sidecar.close();
    kubelet.featureGateOn(true);
  }

  @Test
  void aKubeletWithoutTheFeatureGateFailsTheCheckpointAndNothingIsStored() throws Exception {
    kubelet.runPod(pod("gate"), Map.of("app", app.pid(), "sidecar", sidecar.pid()));
    kubelet.featureGateOn(false);
    Checkpoint failed = awaitPhase(create("gate", CheckpointTarget.pod("gate", null)), CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("KubeletCheckpointNotFound");
    assertThat(failed.getStatus().message).contains("ContainerCheckpoint feature gate is off");
    assertThat(events("gate")).anyMatch(e -> e.getReason().equals("KubeletCheckpointNotFound") && e.getType().equals("Warning"));
    assertThat(storageRoot.resolve(namespace)).doesNotExist();
  }

  @Test
  void podsThatCannotBeCheckpointedAreRefusedByTheOperator() throws Exception {
    assertThat(awaitPhase(create("ghost", CheckpointTarget.pod("ghost", null)), CheckpointPhase.Failed).getStatus().reason)
        .isEqualTo("PodNotFound");
    kubelet.runPod(pod("web"), Map.of("app", app.pid()));
    Checkpoint wrongContainer = awaitPhase(create("db", CheckpointTarget.pod("web", "db")), CheckpointPhase.Failed);
    assertThat(wrongContainer.getStatus().reason).isEqualTo("ContainerNotFound");
    assertThat(events("db")).anyMatch(e -> e.getReason().equals("ContainerNotFound") && e.getType().equals("Warning"));
  }

  @Test
  void aDrainedNodeTriggersOneCheckpointOfEachSelectedPodOnIt() throws Exception {
    kubelet.runPod(pod("web-0"), Map.of("app", app.pid()));
    kubelet.runPod(pod("web-1"), Map.of("app", sidecar.pid()));
    otherKubelet.runPod(pod("web-2"), Map.of());
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName("drain").withNamespace(namespace).build());
    schedule.setSpec(new CheckpointScheduleSpec());
    schedule.getSpec().schedule = "0 0 1 1 *";
    schedule.getSpec().selector = new LabelSelector(null, Map.of("app", "web"));
    schedule.getSpec().containers = List.of("app");
    schedule.getSpec().storage = storage;
    schedule.getSpec().triggers = new CheckpointScheduleSpec.Triggers();
    schedule.getSpec().triggers.onNodeDrain = true;
    admin.resource(schedule).create();
    admin.resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata().build()).create();
    try {
      admin.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editOrNewSpec().withUnschedulable(true).endSpec().build());
      var checkpoints = admin.resources(Checkpoint.class).inNamespace(namespace).withLabel(Labels.SCHEDULE, "drain");
      await().atMost(TIMEOUT).until(() -> checkpoints.list().getItems().stream()
          .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed).count() == 2);
      // more of the same drain: one checkpoint per pod and drain, not per change of the node
      admin.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editSpec()
          .addToTaints(new TaintBuilder().withKey("maintenance").withEffect("NoExecute").build()).endSpec().build());
      await("one checkpoint per pod and drain").during(Duration.ofSeconds(2)).atMost(TIMEOUT)
          .until(() -> checkpoints.list().getItems().size() == 2);
      assertThat(checkpoints.list().getItems()).extracting(c -> c.getSpec().target.pod.name)
          .containsExactlyInAnyOrder("web-0", "web-1");
      assertThat(checkpoints.list().getItems()).allSatisfy(c -> {
        assertThat(c.getMetadata().getLabels()).containsEntry(Labels.TRIGGER, Labels.TRIGGER_DRAIN)
            .containsEntry(Labels.POD, c.getSpec().target.pod.name);
        assertThat(c.getMetadata().getName()).startsWith("drain-drain-").endsWith("-" + c.getSpec().target.pod.name);
        assertThat(c.getStatus().node).isEqualTo(NODE);
      });
      assertThat(admin.resources(CheckpointSchedule.class).inNamespace(namespace).withName("drain").get().getStatus()
          .drainTriggered).isEqualTo(2);
    } finally {
      admin.nodes().withName(NODE).delete();
    }
  }

  /**
   * A large pod checkpoint over a slowed link to S3: while the agent streams the kubelet's archive
   * into storage, what {@code kubectl get ckpt -w} shows moves forward at least three times, in
   * bytes of that archive, and ends at 100%.
   */
  @Test
  void aLargePodCheckpointShowsItsUploadMoving() throws Exception {
    Path count = dir.resolve(namespace + "-big.txt");
    try (S3Server s3 = S3Server.start(); FaultInjectingProxy link = FaultInjectingProxy.to(s3.endpoint());
        var memhog = Workloads.startInPidNamespace("memhog", Integer.toString(BIG_MIB), "0", count.toString())) {
      s3.createBucket("progress");
      String slowStorage = "slow-" + NODE;
      TestStorage.s3(slowStorage, link.endpoint(), "progress").credentials(s3).create(admin);
      await().atMost(TIMEOUT).until(() -> TestStorage.isAvailable(admin, slowStorage));
      link.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, BIG_LINK_BYTES_PER_SECOND);
      await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 1); // its memory is written
      kubelet.runPod(pod("big"), Map.of("app", memhog.pid()));

      ProgressSeen seen = new ProgressSeen();
      Checkpoint done;
      try (var watch = admin.resources(Checkpoint.class).inNamespace(namespace).withName("big").watch(seen.watcher())) {
        done = awaitPhase(PodCheckpoints.create(admin, namespace, "big", CheckpointTarget.pod("big", "app"), slowStorage),
            CheckpointPhase.Completed);
      }
      seen.assertMovedForward(done.getStatus(), (long) BIG_MIB << 20);
      assertThat(seen.progresses()).extracting(p -> p.step).contains(ProgressStatus.UPLOADING);
    }
  }

  // --- helpers ---

  Pod pod(String name) {
    return new PodBuilder().withNewMetadata().withName(name).withNamespace(namespace).withLabels(Map.of("app", "web"))
        .endMetadata().withNewSpec()
        .addNewContainer().withName("app").withImage("example.org/counter:1").endContainer()
        .addNewContainer().withName("sidecar").withImage("example.org/sidecar:1").endContainer()
        .endSpec().build();
  }

  Checkpoint create(String name, CheckpointTarget target) {
    return PodCheckpoints.create(admin, namespace, name, target, storage);
  }

  Checkpoint awaitPhase(Checkpoint c, CheckpointPhase phase) {
    return PodCheckpoints.awaitPhase(admin, c, phase, TIMEOUT);
  }

  List<Event> events(String name) {
    return PodCheckpoints.events(admin, namespace, name);
  }


  static String token(String namespace, String serviceAccount) {
    return admin.serviceAccounts().inNamespace(namespace).withName(serviceAccount)
        .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus().getToken();
  }
}
