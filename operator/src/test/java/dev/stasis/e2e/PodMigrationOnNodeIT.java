package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationSpec;
import dev.stasis.testing.CounterPods;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Migration of a pod on the real node of scripts/node.sh, which has one node: the pod is
 * checkpointed through the real kubelet while it runs, deleted once the archive is stored, and
 * restored in place (allowSourceNode) by containerd from the checkpoint image once it is gone.
 */
@ExtendWith(TestNode.Extension.class)
class PodMigrationOnNodeIT {
  static final Duration TIMEOUT = Duration.ofSeconds(180);
  static final String SYSTEM = "stasis-system";

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static InProcessStasis stasis;
  static String counterImage;
  static String storage;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    counterImage = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    Path token = node.writeToken(dir.resolve("agent.token"), SYSTEM, "stasis-agent");
    stasis = node.startStasis(dir.resolve("work"), node.kubeletUrl(), token);
    storage = node.podStorage("migrate-on-node", dir.resolve("storage"), null);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
  }

  @Test
  void aCountingPodMovesInPlaceAndCountsOnFromItsCheckpointAsTheOneCopy() {
    String namespace = node.newNamespace("podmig");
    CounterPods.run(admin, namespace, "counter", Map.of("app", "counter"), counterImage, "app");
    String sourceUid = admin.pods().inNamespace(namespace).withName("counter").get().getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> CounterPods.lastCount(admin, namespace, "counter", "app") >= 3);
    long before = CounterPods.lastCount(admin, namespace, "counter", "app");

    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withName("move").withNamespace(namespace).build());
    m.setSpec(new MigrationSpec(CheckpointTarget.pod("counter", null)));
    m.getSpec().storage = storage;
    m.getSpec().allowSourceNode = true;
    var migrations = admin.resources(Migration.class).inNamespace(namespace).withName("move");
    admin.resource(m).create();

    Migration done = await().atMost(TIMEOUT).until(migrations::get, mig -> mig.getStatus() != null
        && (mig.getStatus().phaseOrPending() == MigrationPhase.Completed
        || mig.getStatus().phaseOrPending() == MigrationPhase.Failed));
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(MigrationPhase.Completed);
    assertThat(done.getStatus().sourceNode).isEqualTo(node.name());
    assertThat(done.getStatus().sourcePodUid).isEqualTo(sourceUid);
    assertThat(done.getStatus().node).isEqualTo(node.name());
    assertThat(done.getStatus().checkpoint).isEqualTo("move");
    assertThat(done.getStatus().restore).isEqualTo("move");
    String restored = done.getStatus().restoredPod;
    assertThat(restored).as("back under its name").isEqualTo("counter");
    assertThat(admin.pods().inNamespace(namespace).withName(restored).get().getMetadata().getUid()).isNotEqualTo(sourceUid);
    assertThat(done.getStatus().frozenToRunningSeconds).isNotNull().isNotNegative();
    assertThat(done.getStatus().totalSeconds).isNotNull().isGreaterThanOrEqualTo(done.getStatus().frozenToRunningSeconds);
    assertThat(done.getStatus().message).startsWith("moved from node " + node.name() + " to node " + node.name()
        + " (pod " + restored + ")");
    assertThat(PodCheckpoints.events(admin, namespace, "move")).extracting(e -> e.getReason())
        .contains("Checkpointing", "Restoring", "Migrated");

    // The restored container counts on from the checkpoint, and it is the one copy: the original pod is gone.
    await("the restored pod counts on").atMost(TIMEOUT)
        .until(() -> CounterPods.lastCount(admin, namespace, restored, "app") > before + 15);
    CounterPods.assertCountsOn(CounterPods.counts(admin, namespace, restored, "app"), before);
    await("exactly one copy runs").during(Duration.ofSeconds(10)).atMost(Duration.ofSeconds(20)).untilAsserted(() ->
        assertThat(admin.pods().inNamespace(namespace).list().getItems()).singleElement().satisfies(p -> {
          assertThat(p.getMetadata().getName()).isEqualTo(restored);
          assertThat(p.getMetadata().getUid()).isNotEqualTo(sourceUid);
          assertThat(p.getStatus().getPhase()).isEqualTo("Running");
          assertThat(p.getStatus().getContainerStatuses()).allSatisfy(s -> assertThat(s.getRestartCount()).isZero());
        }));

    // The moved pod belongs to its Restore, which outlives the Migration: deleting the Migration keeps it.
    admin.resource(done).delete();
    await().atMost(TIMEOUT).until(() -> migrations.get() == null);
    long counted = CounterPods.lastCount(admin, namespace, restored, "app");
    await("the moved pod runs on without its Migration").during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(30))
        .until(() -> {
          Pod pod = admin.pods().inNamespace(namespace).withName(restored).get();
          return pod != null && pod.getMetadata().getDeletionTimestamp() == null;
        });
    await().atMost(TIMEOUT).until(() -> CounterPods.lastCount(admin, namespace, restored, "app") > counted + 2);
  }
}
