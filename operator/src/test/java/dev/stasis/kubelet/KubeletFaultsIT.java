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
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kubelet checkpoint client against faults the real node (KubeletClientIT) cannot be made to
 * produce: a kubelet whose ContainerCheckpoint feature gate is off (the machine runs one node, with
 * the gate on) and a runtime that hangs. The kubelet double authenticates and authorizes the
 * agent's token on the real API server and checkpoints a real process with real CRIU.
 */
class KubeletFaultsIT {
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
        .withNewSpec().addNewContainer().withName("app").withImage("example.org/counter:1").endContainer()
        .endSpec().build(), Map.of("app", counter.pid()));
    agentToken = admin.serviceAccounts().inNamespace("stasis-system").withName("stasis-agent")
        .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus().getToken();
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
  void featureGateOff() throws Exception {
    kubelet.featureGateOn(false);
    assertThatThrownBy(() -> client().checkpoint(namespace, "web", "app", TIMEOUT))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo("KubeletCheckpointNotFound"))
        .hasMessageContaining("feature gate is off");
  }

  @Test
  void aKubeletThatDoesNotAnswerInTime() throws Exception {
    kubelet.answering(false);
    long started = System.nanoTime();
    assertThatThrownBy(() -> client().checkpoint(namespace, "web", "app", Duration.ofSeconds(1)))
        .isInstanceOfSatisfying(KubeletException.class, e -> assertThat(e.reason()).isEqualTo("KubeletTimeout"))
        .hasMessageContaining("did not answer the checkpoint of " + namespace + "/web/app within 2s");
    assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(10));
  }

  private static KubeletClient client() throws Exception {
    return new KubeletClient(kubelet.url(), () -> agentToken, TlsTrust.trusting(Files.readAllBytes(ca.certificate())),
        Duration.ofSeconds(1));
  }
}
