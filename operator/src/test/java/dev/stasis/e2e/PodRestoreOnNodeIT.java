package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePodSpec;
import dev.stasis.api.SecretReference;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.CounterPods;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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
  /** How long the storage keeps a checkpoint image once its pod runs (spec.registry.imageGracePeriod). */
  static final Duration IMAGE_GRACE = Duration.ofSeconds(20);
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
    // Whole archives (a zstd layer): PodDeduplicationOnNodeIT and the encrypted case below have deduplicated ones
    storage = node.configuredPodStorage("restore-on-node", dir.resolve("storage"), spec -> {
      spec.registry.imageGracePeriod = IMAGE_GRACE.toSeconds() + "s";
      spec.deduplication = false;
    });
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
    assertThat(image).startsWith(node.podRegistry() + "/stasis/" + namespace + "@sha256:");
    assertThat(events("web")).anyMatch(e -> e.getReason().equals("Restored"));
    assertThat(new Kubectl(node.kubeconfig()).run("get", "rst", "web", "-n", namespace).ok().output())
        .contains("Completed").contains(restored);

    // The Pod: the stored spec, pinned to the node, the checkpointed container's image replaced.
    Pod pod = admin.pods().inNamespace(namespace).withName(restored).get();
    assertThat(restored).startsWith("web-");
    assertThat(pod.getSpec().getNodeName()).isEqualTo(node.name());
    assertThat(pod.getSpec().getContainers()).extracting(c -> c.getName() + " " + c.getImage())
        .containsExactly("app " + image, "sidecar " + counterImage);
    assertThat(pod.getMetadata().getOwnerReferences()).extracting(o -> o.getKind() + " " + o.getName() + " " + o.getUid())
        .containsExactly("Restore web " + done.getMetadata().getUid());
    // A pod of no controller keeps its labels.
    assertThat(pod.getMetadata().getLabels()).containsEntry("app", "web").containsEntry("stasis.dev/restore", "web");
    assertThat(pod.getSpec().getImagePullSecrets()).extracting(s -> s.getName()).containsExactly("regcred");

    // The image containerd restored from, in the namespace's repository, tagged for this Restore: an
    // OCI manifest with the checkpoint annotations both runtimes read and checkpointctl's about where
    // it was taken, and one layer, the stored archive (its digest is the archive's sha256), whose diff
    // ID is the kubelet's tar.
    RegistryClient images = registry(node.podRegistry(), "stasis/" + namespace);
    JsonNode manifest = JSON.readTree(images.manifest("app-" + done.getMetadata().getUid()));
    assertThat(manifest.path("mediaType").asText()).isEqualTo(RegistryClient.OCI_MANIFEST);
    var profile = admin.resources(NodeProfile.class).withName(node.name()).get().getSpec();
    String base = counterImage.substring(0, counterImage.lastIndexOf(':'));
    assertThat(JSON.convertValue(manifest.path("annotations"), Map.class)).containsAllEntriesOf(Map.ofEntries(
        Map.entry(CheckpointImage.CRIU_CONTAINER_NAME, "app"),
        Map.entry(CheckpointImage.CRIO_CHECKPOINT_NAME, "app"),
        Map.entry(CheckpointImage.CRIU_POD_NAME, "web"),
        Map.entry(CheckpointImage.CRIU_POD_NAMESPACE, namespace),
        Map.entry(CheckpointImage.CRIU_ENGINE_NAME, "containerd"),
        Map.entry(CheckpointImage.CRIU_ENGINE_VERSION, "2.3.4"),
        Map.entry(CheckpointImage.CRIU_RUNTIME_NAME, "io.containerd.runc.v2"),
        Map.entry(CheckpointImage.CRIU_VERSION, "4.2.1"),
        Map.entry(CheckpointImage.CRIU_HOST_ARCH, "amd64"),
        Map.entry(CheckpointImage.CRIU_HOST_KERNEL, profile.kernelRelease),
        Map.entry(CheckpointImage.CRIU_CGROUP_VERSION, profile.cgroupVersion),
        Map.entry(CheckpointImage.CRIU_DISTRIBUTION_NAME, profile.os.id),
        Map.entry(CheckpointImage.CRIU_ROOTFS_IMAGE_NAME, counterImage),
        Map.entry(CheckpointImage.RESTORE_UID, done.getMetadata().getUid())));
    assertThat(manifest.at("/annotations/" + CheckpointImage.CRIU_ROOTFS_IMAGE_ID.replace("/", "~1")).asText())
        .startsWith(base + "@sha256:");
    assertThat(manifest.path("layers")).hasSize(1);
    assertThat(manifest.at("/layers/0/mediaType").asText()).isEqualTo(CheckpointImage.LAYER_TAR_ZSTD);
    assertThat(manifest.at("/layers/0/digest").asText())
        .isEqualTo("sha256:" + checkpoint.getStatus().containers.get(0).archive.sha256);
    JsonNode config = JSON.readTree(blob(images, manifest.at("/config/digest").asText()));
    assertThat(config.at("/rootfs/diff_ids/0").asText()).isEqualTo("sha256:" + storedManifest(checkpoint)
        .at("/archive/tarSha256").asText());

    await("the restored container counts on").atMost(TIMEOUT)
        .until(() -> lastCount(restored) > before + 20);
    CounterPods.assertCountsOn(counts(restored, "app"), before);
    // The sidecar was not checkpointed: it started afresh from its image.
    assertThat(counts(restored, "sidecar").get(0)).isEqualTo(1L);
    assertThat(admin.pods().inNamespace(namespace).withName(restored).get().getStatus().getContainerStatuses())
        .allSatisfy(s -> assertThat(s.getRestartCount()).isZero());

    // The image holds the container's memory: it leaves the registry once the pod has run for the
    // grace period, and the pod runs on without it.
    Instant ran = Instant.parse(done.getStatus().completionTime);
    await("the image is deleted").atMost(TIMEOUT).until(() -> !hasImage(image));
    assertThat(Instant.now()).isAfterOrEqualTo(ran.plus(IMAGE_GRACE));
    assertThat(tags(namespace)).as("nothing left in the namespace's repository").isEmpty();
    // The operator deletes first and then says so.
    await("the Restore says so").atMost(TIMEOUT).untilAsserted(() ->
        assertThat(admin.resource(done).get().getStatus().conditions).anySatisfy(c -> {
          assertThat(c.getType()).isEqualTo("ImagesDeleted");
          assertThat(c.getStatus()).isEqualTo("True");
          assertThat(c.getMessage()).isEqualTo("deleted checkpoint image " + image + " from the registry: the restored pod"
              + " has run for 20s, its storage's spec.registry.imageGracePeriod");
        }));
    await("an Event says so").atMost(TIMEOUT).until(() -> events("web").stream().anyMatch(e -> e.getReason().equals("ImagesDeleted")));
    long counted = lastCount(restored);
    await("the pod runs on").atMost(TIMEOUT).until(() -> lastCount(restored) > counted + 2);
  }

  /**
   * Each Restore pushes an image of its own: deleting a Restore deletes its image (and its pod, which
   * it owns), not another Restore's of the same checkpoint; deleting the Checkpoint deletes the
   * images of every Restore of it, and the Restore says so.
   */
  @Test
  void theImagesGoWithTheirRestoreAndWithTheirCheckpoint() throws Exception {
    String longKept = node.podStorage("kept-" + namespace, dir.resolve("storage"), null, "1h");
    runPod("web", counterImage);
    checkpoint("web", longKept);
    Restore first = awaitRestore(admin.resource(restore("first", "web")).create());
    Restore second = awaitRestore(admin.resource(restore("second", "web")).create());
    String firstImage = first.getStatus().checkpointImages.get(0).image;
    String secondImage = second.getStatus().checkpointImages.get(0).image;
    assertThat(firstImage).isNotEqualTo(secondImage);
    assertThat(tags(namespace)).containsExactlyInAnyOrder("app-" + first.getMetadata().getUid(),
        "app-" + second.getMetadata().getUid());

    admin.resource(first).delete();
    await("the first Restore goes with its image and pod").atMost(TIMEOUT).until(() -> admin.resource(first).get() == null
        && admin.pods().inNamespace(namespace).withName(first.getStatus().restoredPod).get() == null);
    assertThat(hasImage(firstImage)).isFalse();
    assertThat(hasImage(secondImage)).as("the second Restore's image").isTrue();

    admin.resources(Checkpoint.class).inNamespace(namespace).withName("web").delete();
    await("the Checkpoint goes").atMost(TIMEOUT)
        .until(() -> admin.resources(Checkpoint.class).inNamespace(namespace).withName("web").get() == null);
    assertThat(hasImage(secondImage)).isFalse();
    assertThat(tags(namespace)).isEmpty();
    Restore left = admin.resource(second).get();
    assertThat(left.getStatus().conditions).anySatisfy(c -> assertThat(c.getMessage())
        .isEqualTo("deleted checkpoint image " + secondImage + " from the registry: Checkpoint web was deleted"));
    assertThat(admin.pods().inNamespace(namespace).withName(left.getStatus().restoredPod).get())
        .as("the second restored pod runs on").isNotNull();
  }

  /**
   * The kubelet names the runtime and its version; the node's containerd configuration (in the
   * node's folder, which the agent is told with --containerd-config) turns restores on.
   */
  @Test
  void theNodeProfileSaysTheRuntimeRestoresAndHowTheAgentKnows() throws Exception {
    var runtime = admin.resources(NodeProfile.class).withName(node.name()).get().getSpec().runtime;
    String reported = admin.nodes().withName(node.name()).get().getStatus().getNodeInfo().getContainerRuntimeVersion();
    assertThat(reported).isEqualTo("containerd://2.3.4");
    assertThat(runtime.name).isEqualTo("containerd");
    assertThat(runtime.version).isEqualTo("2.3.4");
    assertThat(runtime.restore.restores()).isTrue();
    assertThat(runtime.restore.source).isEqualTo(NodeProfileSpec.RuntimeRestore.FROM_CONFIG);
    assertThat(runtime.restore.message).isEqualTo("containerd 2.3.4 restores from checkpoint images:"
        + " enable_experimental_restore_via_create = true in " + node.runtime().containerdConfig());
    assertThat(new Kubectl(node.kubeconfig()).run("get", "nodeprof", node.name()).ok().output())
        .containsPattern("containerd\\s+2\\.3\\.4\\s+true"); // RUNTIME VERSION RESTORES, as NodeProfile declares them
  }

  /**
   * The runtime gets the plain layer: a whole archive is stored encrypted and decrypted on its way to
   * the registry; a deduplicated one's tar is put together from its encrypted skeleton and chunks.
   */
  @ParameterizedTest(name = "deduplication: {0}")
  @ValueSource(booleans = {false, true})
  void anEncryptedCheckpointIsRestoredFromItsDecryptedLayer(boolean deduplication) throws Exception {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    admin.resource(new SecretBuilder().withNewMetadata().withName("keys-" + namespace).withNamespace(SYSTEM).endMetadata()
        .withStringData(Map.of("k1", Base64.getEncoder().encodeToString(key))).build()).create();
    String encrypted = node.configuredPodStorage("enc-" + namespace, dir.resolve("storage"), spec -> {
      spec.encryption = new EncryptionSpec(new SecretReference("keys-" + namespace, SYSTEM), "k1");
      spec.deduplication = deduplication;
    });
    runPod("web", counterImage);
    long before = lastCount("web");
    Checkpoint checkpoint = checkpoint("web", encrypted);
    admin.pods().inNamespace(namespace).withName("web").withGracePeriod(0).delete();

    Restore done = awaitRestore(admin.resource(restore("web", "web")).create());
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
    // The registry checked the pushed bytes against this digest: the decrypted archive, not the stored one.
    JsonNode stored = storedManifest(checkpoint);
    assertThat(stored.at("/archive/encryption/algorithm").asText()).isEqualTo("AES-256-GCM-STREAM");
    JsonNode manifest = JSON.readTree(registry(node.podRegistry(), "stasis/" + namespace)
        .manifest("app-" + done.getMetadata().getUid()));
    String plainLayer = deduplication ? stored.at("/archive/tarSha256").asText()
        : stored.at("/archive/encryption/plaintextSha256").asText();
    assertThat(plainLayer).isNotBlank();
    assertThat(stored.at("/chunks").isMissingNode()).isEqualTo(!deduplication);
    assertThat(manifest.at("/layers/0/digest").asText()).isEqualTo("sha256:" + plainLayer)
        .isNotEqualTo("sha256:" + stored.at("/archive/sha256").asText());
    String restored = done.getStatus().restoredPod;
    await("the restored container counts on").atMost(TIMEOUT)
        .until(() -> lastCount(restored) > before + 20);
    CounterPods.assertCountsOn(counts(restored, "app"), before);
  }

  /**
   * containerd restores a container on the image the checkpoint was based on, found on the node by
   * its digest reference or pulled again by it. The image is deleted from the registry after the
   * checkpoint: while the node has it the restore works; once the node lost it too, the agent says
   * so before it pushes anything.
   */
  @Test
  void aBaseImageNeitherTheNodeNorItsRegistryHasIsSaidBeforeAnythingIsPushed() throws Exception {
    // An image of its own content: containerd finds a base image by any repository's reference to
    // the same content.
    String doomed = WorkloadImages.push(node.registry(), "workloads/doomed-" + namespace, "1", "pod-counter",
        "/doomed-count");
    runPod("web", doomed);
    Checkpoint checkpoint = checkpoint("web", storage);
    String reference = storedManifest(checkpoint).at("/source/rootfsImageRef").asText();
    assertThat(reference).startsWith(node.registry() + "/workloads/doomed-" + namespace + "@sha256:");
    // The agent knows the node's images from the kubelet's report, which lags a pull by up to ~40 s.
    await("the kubelet reports the image").atMost(TIMEOUT).until(() -> nodeLists(reference));
    RegistryClient base = registry(node.registry(), "workloads/doomed-" + namespace);
    base.deleteManifest(reference.substring(reference.indexOf('@') + 1));

    Restore kept = awaitRestore(admin.resource(restore("kept", "web")).create());
    assertThat(kept.getStatus().phase).as(kept.getStatus().message).isEqualTo(RestorePhase.Completed);

    node.removeImage(reference);
    await("the kubelet reports the image gone").atMost(TIMEOUT).until(() -> !nodeLists(reference));
    Restore failed = awaitRestore(admin.resource(restore("gone", "web")).create());
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("BaseImageUnavailable");
    assertThat(failed.getStatus().message).isEqualTo("containerd restores the container on the image the checkpoint"
        + " was based on, " + reference + ", and pulls it again by that reference, without credentials; its registry"
        + " (http://" + node.registry() + ") cannot give it: it answers that it has no such image, and node "
        + node.name() + " does not have it. Nothing was pushed. Make the image pullable there again (the same digest),"
        + " or restore a checkpoint of a pod whose image still is");
    assertThat(failed.getStatus().checkpointImages).isNull();
    assertThat(events("gone")).anyMatch(e -> e.getReason().equals("BaseImageUnavailable"));
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).extracting(p -> p.getMetadata().getName())
        .containsExactlyInAnyOrder("web", kept.getStatus().restoredPod);
  }

  // --- helpers ---

  /** Whether the registry serves the image (host/repository@digest). */
  static boolean hasImage(String image) throws Exception {
    var get = HttpRequest.newBuilder(URI.create("http://" + image.replaceFirst("/", "/v2/").replace("@", "/manifests/")))
        .header("Accept", RegistryClient.OCI_MANIFEST).method("HEAD", HttpRequest.BodyPublishers.noBody()).build();
    return HttpClient.newHttpClient().send(get, HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
  }

  /** The tags of the namespace's repository; none once it was never pushed to, or everything is deleted. */
  static List<String> tags(String namespace) throws Exception {
    var get = HttpRequest.newBuilder(URI.create("http://" + node.podRegistry() + "/v2/stasis/" + namespace + "/tags/list"))
        .build();
    HttpResponse<String> response = HttpClient.newHttpClient().send(get, HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() == 404) {
      return List.of();
    }
    JsonNode tags = JSON.readTree(response.body()).path("tags");
    return tags.isArray() ? JSON.convertValue(tags, List.class) : List.of();
  }

  boolean nodeLists(String image) {
    return admin.nodes().withName(node.name()).get().getStatus().getImages().stream()
        .anyMatch(i -> i.getNames() != null && i.getNames().contains(image));
  }

  /** A pod labelled app=web whose "app" and "sidecar" both count, once it runs. */
  void runPod(String name, String image) {
    CounterPods.run(admin, namespace, name, Map.of("app", "web"), image, "app", "sidecar");
  }

  long lastCount(String pod) {
    return CounterPods.lastCount(admin, namespace, pod, "app");
  }

  List<Long> counts(String pod, String container) {
    return CounterPods.counts(admin, namespace, pod, container);
  }

  Checkpoint checkpoint(String pod, String storageName) {
    return PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, pod, CheckpointTarget.pod(pod, "app"),
        storageName), CheckpointPhase.Completed, TIMEOUT);
  }

  Restore restore(String name, String checkpoint) {
    return Restores.of(namespace, name, checkpoint);
  }

  Restore awaitRestore(Restore r) {
    return Restores.awaitEnd(admin, r, TIMEOUT);
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


}
