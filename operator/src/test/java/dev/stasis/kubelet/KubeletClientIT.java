package dev.stasis.kubelet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.testing.TestCa;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.readiness.Readiness;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kubelet checkpoint client against the real kubelet of scripts/node.sh: it authenticates and
 * authorizes the agent's token against the API server (webhook, config/rbac applied) and has
 * containerd checkpoint the container with runc and CRIU. Every answer of the kubelet's contract
 * becomes its own reason. The faults this kubelet cannot be made to produce are in KubeletFaultsIT.
 */
@ExtendWith(TestNode.Extension.class)
class KubeletClientIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static String namespace;
  static String agentToken;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    namespace = node.newNamespace("kubelet");
    String counter = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    String ghost = WorkloadImages.push(node.registry(), "workloads/ghost-file", "1", "ghost-file", "/ghost");
    admin.pods().inNamespace(namespace).resource(new PodBuilder().withNewMetadata().withName("web").endMetadata()
        .withNewSpec().withTerminationGracePeriodSeconds(1L)
        .addNewContainer().withName("app").withImage(counter).endContainer()
        .addNewContainer().withName("ghost").withImage(ghost).endContainer()
        .endSpec().build()).create();
    admin.pods().inNamespace(namespace).withName("web").waitUntilCondition(Readiness::isPodReady, 120,
        java.util.concurrent.TimeUnit.SECONDS);
    agentToken = token("stasis-system", "stasis-agent");
  }

  @Test
  void checkpointsAContainerIntoTheKubeletsFolderAndLeavesItRunning() throws Exception {
    String path = client(agentToken, trusted()).checkpoint(namespace, "web", "app", TIMEOUT);
    Path archive = Path.of(path);
    assertThat(archive.getParent()).isEqualTo(node.checkpointDir());
    assertThat(archive.getFileName().toString()).startsWith("checkpoint-web_" + namespace + "-app-").endsWith(".tar");
    var listing = new ProcessBuilder("tar", "-tf", archive.toString()).start();
    List<String> entries = List.of(new String(listing.getInputStream().readAllBytes()).split("\n"));
    // containerd's layout: CRIU's images, the container's config, spec and status, its file system
    // changes and its log.
    assertThat(entries).contains("config.dump", "spec.dump", "status.dump", "rootfs-diff.tar", "container.log",
        "checkpoint/inventory.img", "checkpoint/pages-1.img");
    long counted = lastCount();
    await("the kubelet leaves the container running").atMost(TIMEOUT).until(() -> lastCount() > counted);
    Files.delete(archive);
  }

  @Test
  void aTokenWithoutRbacForNodesCheckpointIsForbidden() throws Exception {
    admin.serviceAccounts().inNamespace(namespace).resource(new ServiceAccountBuilder().withNewMetadata()
        .withName("nobody").endMetadata().build()).create();
    assertRefused(client(token(namespace, "nobody"), trusted()), "app", "KubeletForbidden",
        "403 Forbidden (user=system:serviceaccount:" + namespace + ":nobody, verb=create, resource=nodes, "
            + "subresource(s)=[checkpoint])");
  }

  @Test
  void aTokenTheApiServerDoesNotKnowIsUnauthorized() throws Exception {
    assertRefused(client("not-a-token", trusted()), "app", "KubeletForbidden", "401 Unauthorized");
  }

  @Test
  void noSuchContainer() throws Exception {
    assertRefused(client(agentToken, trusted()), "db", "KubeletCheckpointNotFound", "container db does not exist");
  }

  @Test
  void noSuchPod() throws Exception {
    assertThatThrownBy(() -> client(agentToken, trusted()).checkpoint(namespace, "gone", "app", TIMEOUT))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo("KubeletCheckpointNotFound"))
        .hasMessageContaining("pod does not exist");
  }

  @Test
  void theRuntimeCannotCheckpoint() throws Exception {
    // CRIU refuses the 2 MiB deleted file the ghost container holds open (over its --ghost-limit).
    assertRefused(client(agentToken, trusted()), "ghost", "RuntimeCannotCheckpoint",
        "checkpointing of " + namespace + "/web/ghost failed");
    try (var left = Files.list(node.checkpointDir())) {
      assertThat(left.filter(p -> p.getFileName().toString().contains("-ghost-")).toList()).isEmpty();
    }
  }

  @Test
  void nothingListens() throws Exception {
    int port;
    try (var socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    var client = new KubeletClient(URI.create("https://127.0.0.1:" + port), () -> agentToken, trusted(),
        Duration.ofSeconds(1));
    assertThatThrownBy(() -> client.checkpoint(namespace, "web", "app", TIMEOUT))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo("KubeletUnreachable"))
        .hasMessageContaining("cannot reach the kubelet at https://127.0.0.1:" + port);
  }

  @Test
  void aKubeletCertificateFromAnotherCaIsNotTrusted() throws Exception {
    TestCa other = TestCa.create(dir.resolve("other-ca"), "other");
    assertRefused(client(agentToken, TlsTrust.trusting(Files.readAllBytes(other.certificate()))), "app",
        "KubeletUntrusted", "--kubelet-ca");
  }

  @Test
  void theExplicitOptOutTrustsAnyCertificate() throws Exception {
    // The kubelet's 404 answer shows the TLS handshake went through without the right CA.
    assertRefused(client(agentToken, TlsTrust.insecure()), "db", "KubeletCheckpointNotFound", "does not exist");
  }

  /** The last count the app container printed, as `kubectl logs` shows it. */
  private static long lastCount() {
    String[] lines = admin.pods().inNamespace(namespace).withName("web").inContainer("app").tailingLines(1).getLog()
        .strip().split("\n");
    return Long.parseLong(lines[lines.length - 1].strip());
  }

  private static void assertRefused(KubeletClient client, String container, String reason, String message) {
    assertThatThrownBy(() -> client.checkpoint(namespace, "web", container, TIMEOUT))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo(reason))
        .hasMessageContaining(message);
  }

  private static KubeletClient client(String token, SSLContext tls) {
    return new KubeletClient(node.kubeletUrl(), () -> token, tls, Duration.ofSeconds(5));
  }

  private static SSLContext trusted() throws Exception {
    return TlsTrust.trusting(Files.readAllBytes(node.clusterCa()));
  }

  static String token(String namespace, String serviceAccount) {
    return admin.serviceAccounts().inNamespace(namespace).withName(serviceAccount)
        .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus().getToken();
  }
}
