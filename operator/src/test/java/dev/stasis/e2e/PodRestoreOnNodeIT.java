package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePodSpec;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.SecretReference;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.readiness.Readiness;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pod restores on the real node of scripts/node.sh: the checkpoint is taken through the real
 * kubelet, the agent pushes the checkpoint image to the node's registry, the operator creates the
 * Pod, the kubelet pulls the image and containerd restores the container from it with runc and
 * CRIU (pulling the image the checkpoint was based on again). The restored container goes on
 * from where it was checkpointed: its log, as `kubectl logs` shows it, counts on without a gap.
 */
@ExtendWith(TestNode.Extension.class)
class PodRestoreOnNodeIT {
  static final Duration TIMEOUT = Duration.ofSeconds(120);
  static final ObjectMapper JSON = new ObjectMapper();
  static final String SYSTEM = "stasis-system";

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static InProcessStasis stasis;
  static String counterImage;
  static String storage;

  String namespace;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    counterImage = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    Path token = node.writeToken(dir.resolve("agent.token"), SYSTEM, "stasis-agent");
    stasis = node.startStasis(dir.resolve("work"), node.kubeletUrl(), token);
    storage = storage("restore-on-node", null);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
  }

  @BeforeEach
  void newNamespace() {
    namespace = node.newNamespace("podrst");
  }

  @Test
  void theRestoredContainerCountsOnFromItsCheckpoint() throws Exception {
    runPod("web", counterImage);
    long before = lastCount("web");
    Checkpoint checkpoint = checkpoint("web", storage);
    admin.pods().inNamespace(namespace).withName("web").withGracePeriod(0).delete();
    admin.pods().inNamespace(namespace).withName("web").waitUntilCondition(p -> p == null, 60, TimeUnit.SECONDS);

    Restore restore = restore("web", "web");
    restore.getSpec().pod = new RestorePodSpec();
    restore.getSpec().pod.imagePullSecrets = List.of("regcred");
    Restore done = awaitRestore(admin.resource(restore).create());
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
    String restored = done.getStatus().restoredPod;
    assertThat(done.getStatus().message).isEqualTo("restored as pod " + restored + " on node " + node.name());
    assertThat(done.getStatus().checkpointImages).extracting(i -> i.container).containsExactly("app");
    String image = done.getStatus().checkpointImages.get(0).image;
    assertThat(image).startsWith(node.podRegistry() + "/stasis/" + namespace + "/web@sha256:");
    assertThat(events("web")).anyMatch(e -> e.getReason().equals("Restored"));
    assertThat(new Kubectl(node.kubeconfig()).run("get", "rst", "web", "-n", namespace).ok().output())
        .contains("Completed").contains(restored);

    // The Pod: the stored spec, pinned to the node, the checkpointed container's image replaced.
    Pod pod = admin.pods().inNamespace(namespace).withName(restored).get();
    assertThat(restored).startsWith("web-");
    assertThat(pod.getSpec().getNodeName()).isEqualTo(node.name());
    assertThat(pod.getSpec().getContainers()).extracting(c -> c.getName() + " " + c.getImage())
        .containsExactly("app " + image, "sidecar " + counterImage);
    assertThat(pod.getMetadata().getOwnerReferences()).isNullOrEmpty();
    assertThat(pod.getMetadata().getLabels()).containsEntry("app", "web");
    assertThat(pod.getSpec().getImagePullSecrets()).extracting(s -> s.getName()).containsExactly("regcred");

    // The image containerd restored from: an OCI manifest with the checkpoint annotations and one
    // layer, the stored archive (its digest is the archive's sha256), whose diff ID is the kubelet's tar.
    RegistryClient images = registry(node.podRegistry(), "stasis/" + namespace + "/web");
    JsonNode manifest = JSON.readTree(images.manifest("app-" + checkpoint.getMetadata().getUid()));
    assertThat(manifest.path("mediaType").asText()).isEqualTo(RegistryClient.OCI_MANIFEST);
    assertThat(manifest.path("annotations").path(CheckpointImage.CRIU_CONTAINER_NAME).asText()).isEqualTo("app");
    assertThat(manifest.path("annotations").path(CheckpointImage.CRIO_CHECKPOINT_NAME).asText()).isEqualTo("app");
    assertThat(manifest.path("layers")).hasSize(1);
    assertThat(manifest.at("/layers/0/mediaType").asText()).isEqualTo(CheckpointImage.LAYER_TAR_ZSTD);
    assertThat(manifest.at("/layers/0/digest").asText())
        .isEqualTo("sha256:" + checkpoint.getStatus().containers.get(0).archive.sha256);
    JsonNode config = JSON.readTree(blob(images, manifest.at("/config/digest").asText()));
    assertThat(config.at("/rootfs/diff_ids/0").asText()).isEqualTo("sha256:" + storedManifest(checkpoint)
        .at("/archive/tarSha256").asText());

    await("the restored container counts on").atMost(TIMEOUT)
        .until(() -> lastCount(restored) > before + 20);
    assertCountsOn(counts(restored, "app"), before);
    // The sidecar was not checkpointed: it started afresh from its image.
    assertThat(counts(restored, "sidecar").get(0)).isEqualTo(1L);
    assertThat(admin.pods().inNamespace(namespace).withName(restored).get().getStatus().getContainerStatuses())
        .allSatisfy(s -> assertThat(s.getRestartCount()).isZero());
  }

  /** The runtime gets the plain layer: the archive is stored encrypted and decrypted on its way to the registry. */
  @Test
  void anEncryptedCheckpointIsRestoredFromItsDecryptedLayer() throws Exception {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    admin.resource(new SecretBuilder().withNewMetadata().withName("keys-" + namespace).withNamespace(SYSTEM).endMetadata()
        .withStringData(Map.of("k1", Base64.getEncoder().encodeToString(key))).build()).create();
    String encrypted = storage("enc-" + namespace, new EncryptionSpec(new SecretReference("keys-" + namespace, SYSTEM), "k1"));
    runPod("web", counterImage);
    long before = lastCount("web");
    Checkpoint checkpoint = checkpoint("web", encrypted);
    admin.pods().inNamespace(namespace).withName("web").withGracePeriod(0).delete();

    Restore done = awaitRestore(admin.resource(restore("web", "web")).create());
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
    // The registry checked the pushed bytes against this digest: the decrypted archive, not the stored one.
    JsonNode stored = storedManifest(checkpoint);
    assertThat(stored.at("/archive/encryption/algorithm").asText()).isEqualTo("AES-256-GCM-STREAM");
    JsonNode manifest = JSON.readTree(registry(node.podRegistry(), "stasis/" + namespace + "/web")
        .manifest("app-" + checkpoint.getMetadata().getUid()));
    assertThat(manifest.at("/layers/0/digest").asText())
        .isEqualTo("sha256:" + stored.at("/archive/encryption/plaintextSha256").asText())
        .isNotEqualTo("sha256:" + stored.at("/archive/sha256").asText());
    String restored = done.getStatus().restoredPod;
    await("the restored container counts on").atMost(TIMEOUT)
        .until(() -> lastCount(restored) > before + 20);
    assertCountsOn(counts(restored, "app"), before);
  }

  @Test
  void aPodTheRuntimeCannotRestoreIsDeletedWithItsImage() throws Exception {
    // A base image of its own (its own content too: containerd names the base image of a checkpoint
    // by any repository that holds the same image), deleted from the registry after the checkpoint:
    // containerd must pull it again to restore, and cannot.
    String doomed = WorkloadImages.push(node.registry(), "workloads/doomed-" + namespace, "1", "pod-counter",
        "/doomed-count");
    runPod("web", doomed);
    checkpoint("web", storage);
    RegistryClient base = registry(node.registry(), "workloads/doomed-" + namespace);
    base.deleteManifest("sha256:" + RegistryClient.sha256(base.manifest("1")));

    Restore failed = awaitRestore(admin.resource(restore("crash", "web")).create());
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("RestoredPodFailed");
    assertThat(failed.getStatus().message).contains("cannot run").contains("failed to pull checkpoint base image");
    String restored = failed.getStatus().restoredPod;
    await("the pod is deleted").atMost(TIMEOUT)
        .until(() -> admin.pods().inNamespace(namespace).withName(restored).get() == null);
    String image = failed.getStatus().checkpointImages.get(0).image;
    var get = HttpRequest.newBuilder(URI.create("http://" + image.replaceFirst("/", "/v2/").replace("@", "/manifests/")))
        .header("Accept", RegistryClient.OCI_MANIFEST).build();
    assertThat(HttpClient.newHttpClient().send(get, HttpResponse.BodyHandlers.discarding()).statusCode())
        .as("no dangling image").isEqualTo(404);
  }

  // --- helpers ---

  /** A pod labelled app=web whose "app" and "sidecar" both count, once it runs. */
  void runPod(String name, String image) {
    admin.resource(new PodBuilder().withNewMetadata().withName(name).withNamespace(namespace).addToLabels("app", "web")
        .endMetadata()
        .withNewSpec().withTerminationGracePeriodSeconds(1L)
        .addNewContainer().withName("app").withImage(image).endContainer()
        .addNewContainer().withName("sidecar").withImage(image).endContainer()
        .endSpec().build()).create();
    admin.pods().inNamespace(namespace).withName(name).waitUntilCondition(Readiness::isPodReady, 120, TimeUnit.SECONDS);
  }

  /**
   * The restored container's log (containerd restores the checkpointed one and appends) runs
   * 1..a, then the restored process goes on at some r with r..N, no count missing: it did not start
   * over, r is past {@code before} (what the container had printed when the checkpoint was asked
   * for), and it counted on well past the checkpoint. r may repeat a few counts (r <= a): the
   * kubelet's checkpoint leaves the container running, so the log copied into the checkpoint and
   * the pipe to containerd's shim (CRIU keeps pipe contents) can hold counts printed after CRIU
   * took the process' memory.
   */
  static void assertCountsOn(List<Long> counts, long before) {
    int restart = 1;
    while (restart < counts.size() && counts.get(restart) == counts.get(restart - 1) + 1) {
      restart++;
    }
    assertThat(counts.subList(0, restart)).as("the checkpointed log").isEqualTo(LongStream.rangeClosed(1, restart)
        .boxed().toList());
    List<Long> after = counts.subList(restart, counts.size());
    if (!after.isEmpty()) {
      long r = after.get(0);
      assertThat(after).as("the restored process' counts, in %s", counts)
          .isEqualTo(LongStream.range(r, r + after.size()).boxed().toList());
      assertThat(r).as("where the restored process went on, in %s", counts).isGreaterThan(before)
          .isLessThanOrEqualTo(restart);
    }
    assertThat(counts.get(counts.size() - 1)).as("counted on after the checkpoint").isGreaterThan(before + 10);
  }

  long lastCount(String pod) {
    List<Long> counts = counts(pod, "app");
    return counts.get(counts.size() - 1);
  }

  /** Every count a container printed, as its log shows them (a line still being written left out). */
  List<Long> counts(String pod, String container) {
    String log = admin.pods().inNamespace(namespace).withName(pod).inContainer(container).getLog();
    List<String> lines = log.lines().toList();
    return (log.endsWith("\n") ? lines : lines.subList(0, Math.max(0, lines.size() - 1))).stream()
        .map(String::strip).filter(l -> !l.isEmpty()).map(Long::parseLong).toList();
  }

  Checkpoint checkpoint(String pod, String storageName) {
    return PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, pod, CheckpointTarget.pod(pod, "app"),
        storageName), CheckpointPhase.Completed, TIMEOUT);
  }

  /** A Restore of a checkpoint, to create. */
  Restore restore(String name, String checkpoint) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    return r;
  }

  Restore awaitRestore(Restore r) {
    var resource = admin.resources(Restore.class).inNamespace(namespace).withName(r.getMetadata().getName());
    await().atMost(TIMEOUT).until(() -> {
      Restore now = resource.get();
      return now.getStatus() != null && now.getStatus().phase != null && now.getStatus().phase.isTerminal();
    });
    return resource.get();
  }

  JsonNode storedManifest(Checkpoint c) throws Exception {
    return JSON.readTree(dir.resolve("storage").resolve(namespace).resolve(c.getMetadata().getName() + "-"
        + c.getMetadata().getUid()).resolve("containers/app/manifest.json").toFile());
  }

  List<Event> events(String name) {
    return PodCheckpoints.events(admin, namespace, name);
  }


  static byte[] blob(RegistryClient registry, String digest) throws Exception {
    return HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NORMAL).build().send(HttpRequest.newBuilder(
        URI.create("http://" + registry.reference(digest).replaceFirst("/", "/v2/").replace("@", "/blobs/"))).build(),
        HttpResponse.BodyHandlers.ofByteArray()).body();
  }

  static RegistryClient registry(String host, String repository) throws Exception {
    return RegistryClient.open(Registry.of("http://" + host, null, null, TlsTrust.system()), repository);
  }

  /** A filesystem storage whose pod checkpoints are restored through the node's registry, as pods reach it. */
  static String storage(String name, EncryptionSpec encryption) {
    CheckpointStorage s = new CheckpointStorage();
    s.setMetadata(new ObjectMetaBuilder().withName(name).build());
    s.setSpec(new CheckpointStorageSpec());
    s.getSpec().filesystem = new FileSystemStorage(dir.resolve("storage").toString());
    s.getSpec().registry = new RegistrySpec();
    // Where the agent pushes when it runs as a pod; the kubelet pulls from there too.
    s.getSpec().registry.url = "http://" + node.podRegistry() + "/stasis";
    s.getSpec().registry.insecure = true;
    s.getSpec().encryption = encryption;
    admin.resource(s).create();
    return name;
  }
}
