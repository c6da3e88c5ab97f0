package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.ControllerLabels;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePodSpec;
import dev.stasis.testing.CounterPods;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpecBuilder;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.apps.StatefulSetBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.JobBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.readiness.Readiness;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pods of a Deployment, a StatefulSet and a Job, checkpointed and restored on the real node with
 * the real kube-controller-manager running their controllers: the restored pod belongs to its
 * Restore, so the old controller neither adopts it, nor deletes it, nor counts it, whatever the
 * pod's labels; a StatefulSet's pod comes back under its own name only once the StatefulSet no
 * longer runs it, a Job's only once the Job is suspended; and the restored process counts on.
 */
@ExtendWith(TestNode.Extension.class)
class ControllerPodsOnNodeIT {
  static final Duration TIMEOUT = Duration.ofSeconds(120);
  /** How long the controllers are watched not to touch a restored pod: several of their resyncs. */
  static final Duration LEFT_ALONE = Duration.ofSeconds(10);

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static InProcessStasis stasis;
  static String image;
  static String storage;

  String namespace;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    image = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    Path token = node.writeToken(dir.resolve("agent.token"), "stasis-system", "stasis-agent");
    stasis = node.startStasis(dir.resolve("work"), node.kubeletUrl(), token);
    storage = node.podStorage("controllers", dir.resolve("storage"), null);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
  }

  @BeforeEach
  void newNamespace() {
    namespace = node.newNamespace("ctl");
  }

  @Test
  void aRestoredDeploymentPodIsNeitherAdoptedNorDeletedNorCountedAndSurvivesItsDeployment() throws Exception {
    admin.resource(new DeploymentBuilder().withNewMetadata().withName("web").withNamespace(namespace).endMetadata()
        .withNewSpec().withReplicas(1).withNewSelector().addToMatchLabels("app", "web").endSelector()
        .withTemplate(template(Map.of("app", "web"), t -> {})).endSpec().build()).create();
    Pod source = awaitOnePod("app=web");
    long before = lastCount(source.getMetadata().getName());
    checkpoint(source.getMetadata().getName());
    admin.resource(source).withGracePeriod(0).delete();
    Pod replacement = await().atMost(TIMEOUT).until(() -> readyPods("app=web").stream()
        .filter(p -> !p.getMetadata().getUid().equals(source.getMetadata().getUid())).findFirst().orElse(null),
        p -> p != null);

    Pod plain = restored(restore("plain", source.getMetadata().getName(), r -> {}));
    assertOwnedBy(plain, "plain");
    assertThat(plain.getMetadata().getLabels()).doesNotContainKeys("app", "pod-template-hash")
        .containsEntry("stasis.dev/restore", "plain");
    Pod labelled = restored(restore("labelled", source.getMetadata().getName(), r -> {
      r.pod = new RestorePodSpec();
      r.pod.controllerLabels = ControllerLabels.Keep;
    }));
    assertOwnedBy(labelled, "labelled");
    assertThat(labelled.getMetadata().getLabels()).containsEntry("app", "web").containsKey("pod-template-hash");

    // The ReplicaSet's selector matches the labelled pod: it still neither adopts, deletes nor counts it.
    await("left alone").during(LEFT_ALONE).atMost(LEFT_ALONE.plusSeconds(30)).until(() ->
        alive(plain) && alive(labelled) && alive(replacement)
            && admin.apps().deployments().inNamespace(namespace).withName("web").get().getStatus().getReplicas() == 1
            && admin.apps().replicaSets().inNamespace(namespace).list().getItems().stream()
                .allMatch(rs -> rs.getStatus().getReplicas() == 1 || rs.getSpec().getReplicas() == 0));
    CounterPods.assertCountsOn(counts(plain.getMetadata().getName()), before);

    admin.apps().deployments().inNamespace(namespace).withName("web").delete();
    await("the Deployment's own pod goes").atMost(TIMEOUT).until(() -> !alive(replacement));
    await("the restored pods survive their Deployment").during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(30))
        .until(() -> alive(plain) && alive(labelled));
  }

  @Test
  void aStatefulSetPodComesBackAsItselfOnceTheStatefulSetNoLongerRunsIt() throws Exception {
    admin.resource(new StatefulSetBuilder().withNewMetadata().withName("db").withNamespace(namespace).endMetadata()
        .withNewSpec().withServiceName("db").withReplicas(1).withNewSelector().addToMatchLabels("app", "db").endSelector()
        .withTemplate(template(Map.of("app", "db"), t -> {})).endSpec().build()).create();
    Pod source = await().atMost(TIMEOUT).until(() -> admin.pods().inNamespace(namespace).withName("db-0").get(),
        p -> p != null && Readiness.isPodReady(p));
    long before = lastCount("db-0");
    checkpoint("db-0");

    Restore refused = Restores.awaitEnd(admin, admin.resource(restore("early", "db-0", r -> {})).create(), TIMEOUT);
    assertThat(refused.getStatus().reason).as(refused.getStatus().message).isEqualTo("StatefulSetRunsPod");
    assertThat(refused.getStatus().message).startsWith("StatefulSet db runs pod db-0 (1 replicas)")
        .contains("kubectl -n " + namespace + " scale statefulset db --replicas=0");

    admin.apps().statefulSets().inNamespace(namespace).withName("db").scale(0);
    await("db-0 goes").atMost(TIMEOUT).until(() -> admin.pods().inNamespace(namespace).withName("db-0").get() == null);
    Pod restored = restored(restore("db", "db-0", r -> {}));
    assertThat(restored.getMetadata().getName()).isEqualTo("db-0");
    assertThat(restored.getMetadata().getUid()).isNotEqualTo(source.getMetadata().getUid());
    assertThat(restored.getSpec().getHostname()).isEqualTo("db-0");
    assertThat(restored.getSpec().getSubdomain()).isEqualTo("db");
    assertOwnedBy(restored, "db");
    assertThat(restored.getMetadata().getLabels()).doesNotContainKeys("app", "statefulset.kubernetes.io/pod-name");

    // Scaled up again, the StatefulSet cannot make a second db-0, and leaves the restored one alone.
    admin.apps().statefulSets().inNamespace(namespace).withName("db").scale(1);
    await("left alone").during(LEFT_ALONE).atMost(LEFT_ALONE.plusSeconds(30)).until(() -> alive(restored)
        && admin.apps().statefulSets().inNamespace(namespace).withName("db").get().getStatus().getReplicas() == 0);
    assertOwnedBy(admin.pods().inNamespace(namespace).withName("db-0").get(), "db");
    CounterPods.assertCountsOn(counts("db-0"), before);
  }

  @Test
  void aJobPodComesBackOnlyOnceTheJobIsSuspendedAndTheJobDoesNotCountIt() throws Exception {
    admin.resource(new JobBuilder().withNewMetadata().withName("sim").withNamespace(namespace).endMetadata()
        .withNewSpec().withCompletions(1).withParallelism(1).withBackoffLimit(0)
        .withTemplate(template(Map.of("app", "sim"), t -> t.getSpec().setRestartPolicy("Never"))).endSpec().build())
        .create();
    Pod source = awaitOnePod("batch.kubernetes.io/job-name=sim");
    long before = lastCount(source.getMetadata().getName());
    checkpoint(source.getMetadata().getName());

    Restore refused = Restores.awaitEnd(admin, admin.resource(restore("early", source.getMetadata().getName(), r -> {}))
        .create(), TIMEOUT);
    assertThat(refused.getStatus().reason).as(refused.getStatus().message).isEqualTo("JobStillRunning");
    assertThat(refused.getStatus().message).startsWith("Job sim has not finished and is not suspended")
        .contains("patch job sim --type merge -p '{\"spec\":{\"suspend\":true}}'");

    admin.batch().v1().jobs().inNamespace(namespace).withName("sim").edit(j -> {
      j.getSpec().setSuspend(true);
      return j;
    });
    await("the Job deletes its pod").atMost(TIMEOUT).until(() -> !alive(source));
    Pod restored = restored(restore("sim", source.getMetadata().getName(), r -> {}));
    assertOwnedBy(restored, "sim");
    assertThat(restored.getMetadata().getLabels()).doesNotContainKeys("batch.kubernetes.io/job-name", "job-name",
        "batch.kubernetes.io/controller-uid", "controller-uid");

    await("the Job neither adopts nor counts it").during(LEFT_ALONE).atMost(LEFT_ALONE.plusSeconds(30)).until(() -> {
      var status = admin.batch().v1().jobs().inNamespace(namespace).withName("sim").get().getStatus();
      return alive(restored) && (status.getActive() == null || status.getActive() == 0)
          && (status.getSucceeded() == null || status.getSucceeded() == 0)
          && readyPods("batch.kubernetes.io/job-name=sim").isEmpty();
    });
    CounterPods.assertCountsOn(counts(restored.getMetadata().getName()), before);
  }

  // --- helpers ---

  PodTemplateSpec template(Map<String, String> labels, Consumer<PodTemplateSpec> change) {
    PodTemplateSpec template = new PodTemplateSpecBuilder().withNewMetadata().withLabels(labels).endMetadata()
        .withSpec(CounterPods.spec(image, "app")).build();
    change.accept(template);
    return template;
  }

  List<Pod> readyPods(String selector) {
    String[] kv = selector.split("=");
    return admin.pods().inNamespace(namespace).withLabel(kv[0], kv[1]).list().getItems().stream()
        .filter(p -> p.getMetadata().getDeletionTimestamp() == null && Readiness.isPodReady(p)).toList();
  }

  Pod awaitOnePod(String selector) {
    return await().atMost(TIMEOUT).until(() -> readyPods(selector), pods -> pods.size() == 1).get(0);
  }

  boolean alive(Pod pod) {
    Pod now = admin.pods().inNamespace(namespace).withName(pod.getMetadata().getName()).get();
    return now != null && now.getMetadata().getUid().equals(pod.getMetadata().getUid())
        && now.getMetadata().getDeletionTimestamp() == null && "Running".equals(now.getStatus().getPhase());
  }

  void checkpoint(String pod) {
    PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, pod, CheckpointTarget.pod(pod, "app"),
        storage), CheckpointPhase.Completed, TIMEOUT);
  }

  Restore restore(String name, String checkpoint, Consumer<dev.stasis.api.RestoreSpec> change) {
    Restore restore = Restores.of(namespace, name, checkpoint);
    change.accept(restore.getSpec());
    return restore;
  }

  /** The Restore's pod, once the Restore completed. */
  Pod restored(Restore restore) {
    Restore done = Restores.awaitEnd(admin, admin.resource(restore).create(), TIMEOUT);
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
    return admin.pods().inNamespace(namespace).withName(done.getStatus().restoredPod).get();
  }

  void assertOwnedBy(Pod pod, String restore) {
    Restore owner = admin.resources(Restore.class).inNamespace(namespace).withName(restore).get();
    assertThat(pod.getMetadata().getOwnerReferences()).singleElement().satisfies((OwnerReference ref) -> {
      assertThat(ref.getKind()).isEqualTo("Restore");
      assertThat(ref.getApiVersion()).isEqualTo("stasis.dev/v1alpha1");
      assertThat(ref.getName()).isEqualTo(restore);
      assertThat(ref.getUid()).isEqualTo(owner.getMetadata().getUid());
      assertThat(ref.getController()).isTrue();
    });
  }

  long lastCount(String pod) {
    return CounterPods.lastCount(admin, namespace, pod, "app");
  }

  List<Long> counts(String pod) {
    return CounterPods.counts(admin, namespace, pod, "app");
  }
}
