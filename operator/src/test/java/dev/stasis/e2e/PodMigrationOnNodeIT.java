package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationRecovery;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.RestorePlacement;
import dev.stasis.testing.CounterPods;
import dev.stasis.kube.Labels;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.Tool;
import dev.stasis.testing.WorkloadImages;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Migration of a pod on the real node of scripts/node.sh, which has one node: the pod is
 * checkpointed through the real kubelet while it runs, deleted once the archive is stored, and
 * restored in place (allowSourceNode) by containerd from the checkpoint image once it is gone. And
 * the same as a schedule's failover.onDrain while a real {@code kubectl drain} waits on the pod's
 * PodDisruptionBudget.
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

  /**
   * kubectl drain cordons the node, which starts the schedule's Migration, and tries to evict the pod,
   * which its PodDisruptionBudget (minAvailable 1) refuses; the Migration deletes the pod once its
   * checkpoint is stored, and the drain, finding it gone, completes. The pod comes back under a new
   * name (kubectl evicts by name; in place: failover.allowSourceNode, one node) and counts on from
   * the checkpoint.
   */
  @Test
  void aDrainWaitsOnTheDisruptionBudgetWhileThePodMoves() throws Exception {
    String namespace = node.newNamespace("poddrain");
    CounterPods.run(admin, namespace, "counter", Map.of("app", "counter", "drain", namespace), counterImage, "app");
    String sourceUid = admin.pods().inNamespace(namespace).withName("counter").get().getMetadata().getUid();
    admin.resource(new PodDisruptionBudgetBuilder().withNewMetadata().withName("counter").withNamespace(namespace)
        .endMetadata().withNewSpec().withMinAvailable(new IntOrString(1)).withNewSelector()
        .withMatchLabels(Map.of("app", "counter")).endSelector().endSpec().build()).create();
    await("the disruption budget allows no eviction").atMost(TIMEOUT).until(() -> {
      var pdb = admin.policy().v1().podDisruptionBudget().inNamespace(namespace).withName("counter").get();
      return pdb.getStatus() != null && Integer.valueOf(1).equals(pdb.getStatus().getCurrentHealthy())
          && Integer.valueOf(0).equals(pdb.getStatus().getDisruptionsAllowed());
    });
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName("keep").withNamespace(namespace).build());
    schedule.setSpec(new CheckpointScheduleSpec());
    schedule.getSpec().schedule = "@every 1h";
    schedule.getSpec().checkpointTemplate = new CheckpointTemplate();
    schedule.getSpec().checkpointTemplate.target = CheckpointTarget.pod("counter", null);
    schedule.getSpec().checkpointTemplate.storage = storage;
    schedule.getSpec().failover = new CheckpointScheduleSpec.Failover();
    schedule.getSpec().failover.onDrain = true;
    schedule.getSpec().failover.allowSourceNode = true;
    admin.resource(schedule).create();
    await().atMost(TIMEOUT).until(() -> CounterPods.lastCount(admin, namespace, "counter", "app") >= 3);
    long before = CounterPods.lastCount(admin, namespace, "counter", "app");

    Kubectl kubectl = new Kubectl(node.kubeconfig());
    try {
      CompletableFuture<Tool.Result> drain = CompletableFuture.supplyAsync(() -> {
        try {
          return kubectl.run("drain", node.name(), "--pod-selector=drain=" + namespace, "--force",
              "--timeout=" + TIMEOUT.toSeconds() + "s");
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      });
      var migrations = admin.resources(Migration.class).inNamespace(namespace).withLabel(Labels.SCHEDULE, "keep");
      Migration done = await("the drain's Migration").atMost(TIMEOUT).until(() -> migrations.list().getItems(),
          l -> l.size() == 1 && l.get(0).getStatus() != null && l.get(0).getStatus().phaseOrPending().isTerminal()).get(0);
      assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(MigrationPhase.Completed);
      assertThat(done.getStatus().sourcePodUid).isEqualTo(sourceUid);
      String restored = done.getStatus().restoredPod;
      assertThat(restored).as("a name kubectl drain does not evict").startsWith("counter-");
      String output = drain.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS).ok().output();
      assertThat(output).as("the drain waited on the budget").contains("Cannot evict pod as it would violate the pod's"
          + " disruption budget").contains("node/" + node.name() + " drained");

      await("the moved pod counts on").atMost(TIMEOUT)
          .until(() -> CounterPods.lastCount(admin, namespace, restored, "app") > before + 15);
      CounterPods.assertCountsOn(CounterPods.counts(admin, namespace, restored, "app"), before);
      assertThat(admin.pods().inNamespace(namespace).list().getItems()).singleElement()
          .satisfies(p -> assertThat(p.getMetadata().getName()).isEqualTo(restored));
      await("one Migration per drain").during(Duration.ofSeconds(10)).atMost(Duration.ofSeconds(20))
          .until(() -> migrations.list().getItems().size() == 1);
      var moved = admin.resources(CheckpointSchedule.class).inNamespace(namespace).withName("keep").get()
          .getStatus().failedOverTarget;
      assertThat(moved.toPod).as("later runs checkpoint the moved pod").isEqualTo(restored);
      assertThat(moved.fromPod).isEqualTo("counter");
    } finally {
      kubectl.run("uncordon", node.name()).ok();
    }
  }

  /**
   * containerd cannot checkpoint a container whose image it no longer has (removed as image garbage
   * collection would): the Migration fails with the Checkpoint's reason before anything was
   * stopped, says the pod runs on, and it does, untouched: the same pod, counting on, no Restore.
   */
  @Test
  void aPodWhoseCheckpointFailsRunsOnUntouched() throws Exception {
    String namespace = node.newNamespace("podmigfail");
    String doomed = WorkloadImages.push(node.registry(), "workloads/doomed-" + namespace, "1", "pod-counter",
        "/doomed-count");
    CounterPods.run(admin, namespace, "counter", Map.of("app", "counter"), doomed, "app");
    String sourceUid = admin.pods().inNamespace(namespace).withName("counter").get().getMetadata().getUid();
    String repository = node.registry() + "/workloads/doomed-" + namespace + "@sha256:";
    String reference = await("the kubelet reports the image").atMost(TIMEOUT).until(() -> nodeImage(repository),
        r -> r != null);
    node.removeImage(reference);

    Migration failed = migrateInPlace(namespace);
    assertThat(failed.getStatus().phase).isEqualTo(MigrationPhase.Failed);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("RuntimeCannotCheckpoint");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(failed.getStatus().message).contains("not found").endsWith("The workload was not moved and runs on on"
        + " node " + node.name());
    assertThat(failed.getStatus().restore).isNull();
    long counted = CounterPods.lastCount(admin, namespace, "counter", "app");
    await("the pod runs on untouched").atMost(TIMEOUT)
        .until(() -> CounterPods.lastCount(admin, namespace, "counter", "app") > counted + 3);
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).singleElement().satisfies(p -> {
      assertThat(p.getMetadata().getUid()).isEqualTo(sourceUid);
      assertThat(p.getMetadata().getDeletionTimestamp()).isNull();
    });
  }

  /**
   * A Migration no node can take (its nodeSelector names a label no node has): it fails
   * NoCompatibleNode with every node's reason before anything is checkpointed or deleted, and the pod
   * runs on untouched. (No node that can take it only once its checkpoint is stored, just before the
   * pod would be deleted, cannot be made to happen on the one real node without racing the
   * checkpoint: MigrationReconcilerTest has that.)
   */
  @Test
  void aPodNoNodeCanTakeRunsOnUntouched() throws Exception {
    String namespace = node.newNamespace("podmignowhere");
    CounterPods.run(admin, namespace, "counter", Map.of("app", "counter"), counterImage, "app");
    String sourceUid = admin.pods().inNamespace(namespace).withName("counter").get().getMetadata().getUid();

    Migration failed = migrateInPlace(namespace, spec -> {
      spec.placement = new RestorePlacement();
      spec.placement.nodeSelector = Map.of("stasis.dev/nowhere", "true");
    });
    assertThat(failed.getStatus().phase).isEqualTo(MigrationPhase.Failed);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("NoCompatibleNode");
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(failed.getStatus().message).contains("labels do not match nodeSelector {stasis.dev/nowhere=true}")
        .endsWith("Nothing was stopped: the workload runs on where it is");
    assertThat(PodCheckpoints.events(admin, namespace, "move")).extracting(e -> e.getReason()).contains("NoCompatibleNode");
    assertThat(admin.resources(Checkpoint.class).inNamespace(namespace).withName("move").get()).isNull();
    long counted = CounterPods.lastCount(admin, namespace, "counter", "app");
    await("the pod runs on untouched").atMost(TIMEOUT)
        .until(() -> CounterPods.lastCount(admin, namespace, "counter", "app") > counted + 3);
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).singleElement()
        .satisfies(p -> assertThat(p.getMetadata().getUid()).isEqualTo(sourceUid));
  }

  /** Migration "move" of pod counter, back onto the one node (allowSourceNode), as it is once it has ended. */
  static Migration migrateInPlace(String namespace) {
    return migrateInPlace(namespace, spec -> {});
  }

  static Migration migrateInPlace(String namespace, Consumer<MigrationSpec> customize) {
    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withName("move").withNamespace(namespace).build());
    m.setSpec(new MigrationSpec(CheckpointTarget.pod("counter", null)));
    m.getSpec().storage = storage;
    m.getSpec().allowSourceNode = true;
    customize.accept(m.getSpec());
    var migrations = admin.resources(Migration.class).inNamespace(namespace).withName("move");
    admin.resource(m).create();
    return await().atMost(TIMEOUT).until(migrations::get, mig -> mig.getStatus() != null
        && mig.getStatus().phaseOrPending().isTerminal());
  }

  /** The name, with its digest, under which the node's kubelet reports an image of {@code repository}; null if none. */
  static String nodeImage(String repository) {
    return admin.nodes().withName(node.name()).get().getStatus().getImages().stream()
        .flatMap(i -> i.getNames() == null ? java.util.stream.Stream.<String>empty() : i.getNames().stream())
        .filter(n -> n.startsWith(repository)).findFirst().orElse(null);
  }

  @Test
  void aCountingPodMovesInPlaceAndCountsOnFromItsCheckpointAsTheOneCopy() throws Exception {
    String namespace = node.newNamespace("podmig");
    CounterPods.run(admin, namespace, "counter", Map.of("app", "counter"), counterImage, "app");
    String sourceUid = admin.pods().inNamespace(namespace).withName("counter").get().getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> CounterPods.lastCount(admin, namespace, "counter", "app") >= 3);
    long before = CounterPods.lastCount(admin, namespace, "counter", "app");

    Migration done = migrateInPlace(namespace);
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

    String metrics = MetricsEndpoint.get(stasis.metricsPort(), "/metrics").body();
    assertThat(MetricsEndpoint.value(metrics, "stasis_migrations_total", "result=\"Completed\"", "reason=\"Migrated\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    assertThat(MetricsEndpoint.value(metrics, "stasis_migration_frozen_to_running_seconds_count", "result=\"Completed\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    System.out.printf("pod migration in place: %ds in all, %ds from its checkpoint to running again%n",
        done.getStatus().totalSeconds, done.getStatus().frozenToRunningSeconds);

    // The moved pod belongs to its Restore, which outlives the Migration: deleting the Migration keeps it.
    admin.resource(done).delete();
    await().atMost(TIMEOUT).until(() -> admin.resource(done).get() == null);
    long counted = CounterPods.lastCount(admin, namespace, restored, "app");
    await("the moved pod runs on without its Migration").during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(30))
        .until(() -> {
          Pod pod = admin.pods().inNamespace(namespace).withName(restored).get();
          return pod != null && pod.getMetadata().getDeletionTimestamp() == null;
        });
    await().atMost(TIMEOUT).until(() -> CounterPods.lastCount(admin, namespace, restored, "app") > counted + 2);
  }
}
