package dev.stasis.kubelet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.cli.Main;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestCa;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestingKubelet;
import dev.stasis.testing.Workloads;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kubelet checkpoint client against a kubelet double that authenticates and authorizes the
 * agent's token on the real API server (with config/rbac applied) and checkpoints a real process
 * with real CRIU: every answer of the kubelet's contract becomes its own reason.
 */
class KubeletClientIT {
  static final Duration TIMEOUT = Duration.ofSeconds(30);
  static final String NODE = "kubelet-" + UUID.randomUUID().toString().substring(0, 6);

  @TempDir static Path dir;
  static KubernetesClient admin;
  static TestCa ca;
  static TestingKubelet kubelet;
  static Workloads.Workload counter;
  static String namespace;
  static String agentToken;

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    new Kubectl(TestControlPlane.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    ca = TestCa.create(dir.resolve("ca"), "cluster");
    kubelet = TestingKubelet.start(NODE, admin, Main.criuPath(null), ca.issue("kubelet"), dir);
    namespace = TestControlPlane.newNamespace("kubelet");
    counter = Workloads.startInPidNamespace("counter", dir.resolve("count.txt").toString());
    kubelet.runPod(new PodBuilder().withNewMetadata().withName("web").withNamespace(namespace).endMetadata()
        .withNewSpec()
        .addNewContainer().withName("app").withImage("example.org/counter:1").endContainer()
        .addNewContainer().withName("idle").withImage("example.org/idle:1").endContainer()
        .endSpec().build(), Map.of("app", counter.pid()));
    agentToken = token("stasis-system", "stasis-agent");
  }

  @AfterAll
  static void stop() {
    if (counter != null) counter.close();
    if (kubelet != null) kubelet.close();
  }

  @AfterEach
  void kubeletAsUsual() {
    kubelet.featureGateOn(true);
    kubelet.answering(true);
  }

  @Test
  void checkpointsAContainerIntoTheKubeletsFolderInCrioLayout() throws Exception {
    String path = client(agentToken, TlsTrust.trusting(Files.readAllBytes(ca.certificate())))
        .checkpoint(namespace, "web", "app", TIMEOUT);
    assertThat(path).startsWith("/var/lib/kubelet/checkpoints/checkpoint-web_" + namespace + "-app-").endsWith(".tar");
    Path archive = kubelet.checkpointDir().resolve(Path.of(path).getFileName());
    assertThat(archive).exists();
    var listing = new ProcessBuilder("tar", "-tf", archive.toString()).start();
    String entries = new String(listing.getInputStream().readAllBytes());
    assertThat(entries).contains("config.dump", "spec.dump", "dump.log", "rootfs-diff.tar", "checkpoint/inventory.img",
        "checkpoint/pages-1.img");
    assertThat(Workloads.isAlive(counter.pid())).as("the kubelet leaves the container running").isTrue();
    Files.delete(archive);
  }

  @Test
  void aTokenWithoutRbacForNodesCheckpointIsForbidden() throws Exception {
    admin.serviceAccounts().inNamespace(namespace).resource(new ServiceAccountBuilder().withNewMetadata()
        .withName("nobody").endMetadata().build()).create();
    assertRefused(client(token(namespace, "nobody"), trusted()), "app", "KubeletForbidden",
        "403 Forbidden (user=system:serviceaccount:" + namespace + ":nobody, verb=create, resource=nodes");
  }

  @Test
  void aTokenTheApiServerDoesNotKnowIsUnauthorized() throws Exception {
    assertRefused(client("not-a-token", trusted()), "app", "KubeletForbidden", "401 Unauthorized");
  }

  @Test
  void featureGateOff() throws Exception {
    kubelet.featureGateOn(false);
    assertRefused(client(agentToken, trusted()), "app", "KubeletCheckpointNotFound", "feature gate is off");
  }

  @Test
  void noSuchContainer() throws Exception {
    assertRefused(client(agentToken, trusted()), "db", "KubeletCheckpointNotFound", "container db does not exist");
  }

  @Test
  void theRuntimeCannotCheckpoint() throws Exception {
    assertRefused(client(agentToken, trusted()), "idle", "RuntimeCannotCheckpoint", "container is not running");
  }

  @Test
  void aKubeletThatDoesNotAnswerInTime() throws Exception {
    kubelet.answering(false);
    long started = System.nanoTime();
    assertThatThrownBy(() -> client(agentToken, trusted()).checkpoint(namespace, "web", "app", Duration.ofSeconds(1)))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo("KubeletTimeout"))
        .hasMessageContaining("did not answer the checkpoint of " + namespace + "/web/app within 2s");
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void nothingListens() throws Exception {
    int port;
    try (var socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    var client = new KubeletClient(URI.create("https://127.0.0.1:" + port), () -> agentToken, trusted(), Duration.ofSeconds(1));
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

  private static void assertRefused(KubeletClient client, String container, String reason, String message) {
    assertThatThrownBy(() -> client.checkpoint(namespace, "web", container, TIMEOUT))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo(reason))
        .hasMessageContaining(message);
  }

  private static KubeletClient client(String token, SSLContext tls) {
    return new KubeletClient(kubelet.url(), () -> token, tls, Duration.ofSeconds(1));
  }

  private static SSLContext trusted() throws Exception {
    return TlsTrust.trusting(Files.readAllBytes(ca.certificate()));
  }

  static String token(String namespace, String serviceAccount) {
    return admin.serviceAccounts().inNamespace(namespace).withName(serviceAccount)
        .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus().getToken();
  }
}
