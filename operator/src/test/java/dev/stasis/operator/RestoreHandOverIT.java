package dev.stasis.operator;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.cli.Main;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestingClock;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator places a Pending Restore on another node because it believes the first node's agent
 * gone, while that agent comes back and restores it: on the real API server, with real agents and
 * CRIU. The operator decides on what its informers showed (a view the test freezes by cutting
 * their watch), and its writes must not win over the agent's: exactly one restored copy.
 */
class RestoreHandOverIT {
  static final Duration TIMEOUT = Duration.ofSeconds(120);

  @TempDir Path dir;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  @Test
  void anAgentThatComesBackDuringReplacementKeepsItsRestore() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    String namespace = TestControlPlane.newNamespace("handover");
    String suffix = UUID.randomUUID().toString().substring(0, 6);
    String nodeA = "handover-a-" + suffix;
    String nodeB = "handover-b-" + suffix;
    String storage = "handover-" + suffix;
    TestStorage.filesystem(storage, dir.resolve("storage")).create(admin);
    Path count = dir.resolve("count");
    var counter = Workloads.startInPidNamespace("counter", count.toString());
    cleanup.add(counter);
    await().atMost(TIMEOUT).until(() -> Files.exists(count) && !Files.readString(count).isBlank());

    // A Completed checkpoint, taken on node A; then node A's agent stops.
    try (InProcessStasis stasis = InProcessStasis.on(admin).agent(nodeA, dir.resolve("work-a"), Main.criuPath(null))
        .start()) {
      Checkpoint c = new Checkpoint();
      c.setMetadata(new ObjectMetaBuilder().withName("counter").withNamespace(namespace).build());
      c.setSpec(new CheckpointSpec(CheckpointTarget.process(nodeA, (int) counter.pid())));
      c.getSpec().storage = storage;
      c.getSpec().options = new CheckpointOptions();
      c.getSpec().options.leaveRunning = false;
      admin.resource(c).create();
      await().atMost(TIMEOUT).until(() -> admin.resource(c).get().getStatus(),
          s -> s != null && s.phase == CheckpointPhase.Completed);
    }

    // The test's operator: it reads cluster-scoped objects through informers it can cut off.
    var apiLink = FaultInjectingProxy.toApiServer(admin);
    cleanup.add(apiLink);
    KubernetesClient viaLink = apiLink.client();
    cleanup.add(viaLink);
    ClusterCache cache = ClusterCache.watching(viaLink);
    Instant t0 = Instant.now();
    TestingClock clock = new TestingClock(t0);
    var reconciler = new RestoreReconciler(admin, cache, new EventRecorder(admin, "operator", "handover-test"),
        RetryPolicy.DEFAULT, clock);
    cleanup.add(InProcessStasis.on(admin).withoutOperator().agent(nodeB, dir.resolve("work-b"), Main.criuPath(null))
        .start());
    await().atMost(TIMEOUT).until(() -> cache.synced() && heartbeat(cache, nodeB) != null);

    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName("counter").withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef("counter");
    r = admin.resource(r).create();
    reconciler.reconcile(r, null);
    Restore decidedOn = admin.resource(r).get();
    assertThat(decidedOn.getStatus().node).as("the source node first").isEqualTo(nodeA);

    // Node B's agent renews its heartbeat, node A's does not; then the operator's view freezes.
    await().atMost(TIMEOUT).until(() -> Instant.parse(heartbeat(cache, nodeB)).isAfter(t0.plusSeconds(15)));
    apiLink.stop();
    clock.now = t0.plus(Duration.ofMinutes(5)).plusSeconds(10);

    // Node A's agent comes back, and restores what waits for it.
    cleanup.add(InProcessStasis.on(admin).withoutOperator().agent(nodeA, dir.resolve("work-a"), Main.criuPath(null))
        .start());
    Restore restored = await().atMost(TIMEOUT).until(() -> admin.resource(decidedOn).get(),
        x -> x.getStatus().phase == RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cleanup.add(() -> Workloads.kill(pid));
    cleanup.add(() -> { // a second copy, should node B's agent have restored one
      Integer second = admin.resource(decidedOn).get().getStatus().restoredPid;
      if (second != null && second != pid) {
        Workloads.kill(second);
      }
    });

    // The operator acts on what it saw: node A's agent silent for over five minutes.
    try {
      reconciler.reconcile(decidedOn, null);
    } catch (KubernetesClientException e) {
      assertThat(e.getCode()).as("the hand-over is conditional on the version decided on").isEqualTo(409);
    }

    Path restoresOnB = dir.resolve("work-b").resolve("restores").resolve(restored.getMetadata().getUid());
    await().during(Duration.ofSeconds(15)).atMost(Duration.ofSeconds(30)).until(() -> {
      Restore now = admin.resource(decidedOn).get();
      return now.getStatus().phase == RestorePhase.Completed && nodeA.equals(now.getStatus().node)
          && nodeA.equals(Labels.node(now)) && now.getStatus().restoredPid == pid && !Files.exists(restoresOnB);
    });
    assertThat(admin.v1().events().inNamespace(namespace).list().getItems())
        .filteredOn(e -> "Restored".equals(e.getReason())).hasSize(1);
  }

  private static String heartbeat(ClusterCache cache, String node) {
    NodeProfile profile = cache.nodeProfile(node);
    return profile == null || profile.getStatus() == null ? null : profile.getStatus().heartbeatTime;
  }

}
