package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.luben.zstd.ZstdInputStream;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.image.RegistryClient;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.KubeletTap;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.readiness.Readiness;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pod checkpoints on the real node of scripts/node.sh: the operator resolves the pod, the agent
 * asks the node's kubelet with its own ServiceAccount token (the kubelet authenticates and
 * authorizes it against the API server: RBAC create on nodes/checkpoint), containerd checkpoints
 * the container with runc and CRIU, and the archive lands in storage as the kubelet wrote it.
 */
@ExtendWith(TestNode.Extension.class)
class PodCheckpointOnNodeIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static KubeletTap tap;
  static Path agentToken;
  static InProcessStasis stasis;
  static String counterImage;
  static String ghostImage;
  static String storage;
  static Path storageRoot;

  String namespace;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    counterImage = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    ghostImage = WorkloadImages.push(node.registry(), "workloads/ghost-file", "1", "ghost-file", "/ghost");
    tap = KubeletTap.in(node.kubeletUrl(), node.checkpointDir());
    agentToken = node.writeToken(dir.resolve("agent.token"), "stasis-system", "stasis-agent");
    stasis = node.startStasis(dir.resolve("work"), tap.url(), agentToken);
    storage = "pods-on-node";
    storageRoot = dir.resolve("storage");
    // Whole archives, as the kubelet wrote them: PodDeduplicationOnNodeIT has the deduplicated ones
    TestStorage.filesystem(storage, storageRoot).with(spec -> spec.deduplication = false).create(admin);
  }

  @AfterAll
  static void stop() throws Exception {
    if (stasis != null) stasis.close();
    if (tap != null) tap.close();
  }

  @BeforeEach
  void newNamespace() {
    namespace = node.newNamespace("podckpt");
  }

  @Test
  void everyContainerIsStoredAsTheKubeletWroteIt() throws Exception {
    Pod pod = runPod("web", "app", counterImage, "sidecar", counterImage);
    Checkpoint done = awaitPhase(create("web", CheckpointTarget.pod("web", null)), CheckpointPhase.Completed);

    assertThat(done.getStatus().node).isEqualTo(node.name());
    assertThat(done.getStatus().containers).extracting(c -> c.name).containsExactly("app", "sidecar");
    assertThat(done.getStatus().archive).as("two containers, two archives: see status.containers").isNull();
    Path folder = storageRoot.resolve(namespace).resolve("web-" + done.getMetadata().getUid()).resolve("containers");
    for (var container : done.getStatus().containers) {
      Path stored = folder.resolve(container.name).resolve("archive.tar.zst");
      assertThat(container.archive.uri).startsWith("file://").endsWith(stored.toString());
      assertThat(container.containerID).startsWith("containerd://").isEqualTo(pod.getStatus().getContainerStatuses()
          .stream().filter(s -> s.getName().equals(container.name)).findFirst().orElseThrow().getContainerID());

      // Decompressed, the stored archive is byte for byte the tar the kubelet had the runtime write.
      Path tar = dir.resolve(namespace + "-" + container.name + ".tar");
      try (InputStream in = new ZstdInputStream(Files.newInputStream(stored))) {
        Files.copy(in, tar, StandardCopyOption.REPLACE_EXISTING);
      }
      JsonNode manifest = JSON.readTree(folder.resolve(container.name).resolve("manifest.json").toFile());
      String kubeletArchive = manifest.at("/source/kubeletArchive").asText();
      assertThat(kubeletArchive).startsWith("checkpoint-web_" + namespace + "-" + container.name + "-");
      assertThat(sha256(tar)).isEqualTo(sha256(tap.witnessed(kubeletArchive)))
          .isEqualTo(manifest.at("/archive/tarSha256").asText());
      assertThat(manifest.at("/source/containerId").asText()).isEqualTo(container.containerID);
      assertThat(manifest.at("/source/podSpec/containers/0/image").asText()).isEqualTo(counterImage);
      assertThat(manifest.at("/source/podLabels/app").asText()).isEqualTo("web");
    }
    try (var left = Files.list(node.checkpointDir())) {
      assertThat(left.toList()).as("the kubelet's copies hold the containers' memory: deleted once stored").isEmpty();
    }
    long counted = lastCount("web", "app");
    await("the pod runs on").atMost(TIMEOUT).until(() -> lastCount("web", "app") > counted);
    assertThat(events("web")).anyMatch(e -> e.getReason().equals("Completed"));
  }

  /** stasis inspect on what containerd wrote: each container's image, command and mounts, and its processes and files. */
  @Test
  void inspectShowsEachContainersImageCommandProcessesAndFiles() throws Exception {
    runPod("seen", "app", counterImage, "sidecar", counterImage);
    awaitPhase(create("seen", CheckpointTarget.pod("seen", null)), CheckpointPhase.Completed);

    List<String> args = List.of("seen", "-n", namespace, "-o", "json", "--kubeconfig", node.kubeconfig().toString());
    JsonNode report = JSON.readTree(InspectIT.inspectAs(args).ok());
    assertThat(report.get("archives")).hasSize(2);
    for (JsonNode archive : report.get("archives")) {
      JsonNode container = archive.get("containerDump");
      // containerd names a container as the kubelet does: container_pod_namespace_uid_attempt
      assertThat(container.get("name").asText()).as("config.dump")
          .startsWith(archive.get("container").asText() + "_seen_" + namespace + "_");
      assertThat(container.get("image").asText()).contains("workloads/pod-counter");
      assertThat(container.get("runtime").asText()).contains("runc");
      assertThat(InspectIT.list(container.get("command"))).extracting(JsonNode::asText)
          .as("spec.dump").containsExactly("/pod-counter", "/count");
      assertThat(InspectIT.list(container.get("mounts"))).extracting(m -> m.get("destination").asText())
          .contains("/proc", "/dev");
      assertThat(container.get("rootfsDiffBytes").asLong()).as("rootfs-diff.tar holds /count").isPositive();
      JsonNode process = archive.at("/dump/processes/0");
      assertThat(process.get("pid").asLong()).isEqualTo(1);
      assertThat(process.get("command").asText()).isEqualTo("pod-counter");
      assertThat(InspectIT.list(process.get("files"))).anySatisfy(f -> assertThat(f.get("path").asText()).isEqualTo("/count"));
      assertThat(archive.at("/dump/stats/frozenTimeMicros").asLong()).as("the runtime's stats-dump").isPositive();
    }
    assertThat(InspectIT.verdict(report, node.name())).isNotNull();

    String text = InspectIT.inspectAs(List.of("seen", "-n", namespace, "-c", "sidecar", "--kubeconfig",
        node.kubeconfig().toString())).ok();
    System.out.println(text);
    assertThat(text).contains("Container sidecar", "Image:", "Mounts", "[1] pod-counter  /pod-counter /count")
        .containsPattern("Command: +/pod-counter /count").doesNotContain("Container app");
  }

  @Test
  void oneNamedContainer() throws Exception {
    runPod("one", "app", counterImage, "sidecar", counterImage);
    Checkpoint done = awaitPhase(create("one", CheckpointTarget.pod("one", "sidecar")), CheckpointPhase.Completed);
    assertThat(done.getStatus().containers).extracting(c -> c.name).containsExactly("sidecar");
    assertThat(done.getStatus().archive.sha256).isEqualTo(done.getStatus().containers.get(0).archive.sha256);
  }

  @Test
  void whenTheSecondContainerFailsTheFirstOnesArchiveIsRemovedToo() throws Exception {
    // CRIU refuses the ghost container's 2 MiB deleted file: containerd's checkpoint fails, the kubelet answers 500.
    runPod("half", "app", counterImage, "ghost", ghostImage);
    Checkpoint failed = awaitPhase(create("half", CheckpointTarget.pod("half", null)), CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("RuntimeCannotCheckpoint");
    assertThat(failed.getStatus().message).contains("checkpointing of " + namespace + "/half/ghost failed");
    assertThat(events("half")).anyMatch(e -> e.getReason().equals("RuntimeCannotCheckpoint"));
    try (var stored = Files.walk(storageRoot.resolve(namespace))) {
      assertThat(stored.filter(Files::isRegularFile).toList()).as("nothing half-done is kept").isEmpty();
    }
    try (var left = Files.list(node.checkpointDir())) {
      assertThat(left.toList()).isEmpty();
    }
  }

  @Test
  void anAgentWithoutRbacForNodesCheckpointIsRefusedByTheKubelet() throws Exception {
    runPod("norbac", "app", counterImage);
    admin.serviceAccounts().inNamespace("stasis-system").resource(new ServiceAccountBuilder().withNewMetadata()
        .withName("no-rbac-" + namespace).endMetadata().build()).create();
    Path ownToken = dir.resolve("agent.token.own");
    Files.copy(agentToken, ownToken, StandardCopyOption.REPLACE_EXISTING);
    // The agent reads its token on every call, as a pod's rotating projected token.
    node.writeToken(agentToken, "stasis-system", "no-rbac-" + namespace);
    try {
      Checkpoint failed = awaitPhase(create("norbac", CheckpointTarget.pod("norbac", "app")), CheckpointPhase.Failed);
      assertThat(failed.getStatus().node).isEqualTo(node.name());
      assertThat(failed.getStatus().reason).isEqualTo("KubeletForbidden");
      assertThat(failed.getStatus().message).contains("403 Forbidden (user=system:serviceaccount:stasis-system:no-rbac-"
          + namespace + ", verb=create, resource=nodes, subresource(s)=[checkpoint])");
    } finally {
      Files.move(ownToken, agentToken, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  // --- helpers ---

  /** A pod of the given containers (name, image, name, image, ...), labelled app=web, once it runs. */
  Pod runPod(String name, String... containers) {
    var spec = new PodBuilder().withNewMetadata().withName(name).withNamespace(namespace).addToLabels("app", "web")
        .endMetadata().withNewSpec().withTerminationGracePeriodSeconds(1L);
    for (int i = 0; i < containers.length; i += 2) {
      spec.addNewContainer().withName(containers[i]).withImage(containers[i + 1]).endContainer();
    }
    admin.resource(spec.endSpec().build()).create();
    return admin.pods().inNamespace(namespace).withName(name).waitUntilCondition(Readiness::isPodReady, 120,
        TimeUnit.SECONDS);
  }

  static String sha256(Path file) throws Exception {
    return RegistryClient.sha256(Files.readAllBytes(file));
  }

  long lastCount(String pod, String container) {
    String[] lines = admin.pods().inNamespace(namespace).withName(pod).inContainer(container).tailingLines(1).getLog()
        .strip().split("\n");
    return Long.parseLong(lines[lines.length - 1].strip());
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

}
