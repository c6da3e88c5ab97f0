package dev.stasis.e2e;

import dev.stasis.testing.MetricsEndpoint;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.NodeProfile;
import dev.stasis.cli.Main;
import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code java -jar stasis.jar operator | agent}, as the images run it: each role serves its probes
 * and metrics, the operator takes the Lease under its host name, and SIGTERM (what the kubelet
 * sends) ends each promptly.
 */
class RunnableJarIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static KubernetesClient admin;

  @TempDir Path dir;

  @BeforeAll
  static void apiServer() throws Exception {
    admin = TestControlPlane.admin();
    admin.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata().build())
        .createOr(NonDeletingOperation::update);
  }

  @Test
  void theOperatorLeadsUnderItsHostNameAndStopsOnSigterm() throws Exception {
    int port = freePort();
    String hostname = "replica-" + UUID.randomUUID().toString().substring(0, 4);
    Role operator = start(hostname, "operator",
        "--leader-election-namespace=stasis-system", "--metrics-port=" + port);
    try {
      await().atMost(TIMEOUT).until(() -> ready(port));
      // Ready as a standby first; the Lease follows once free (an earlier holder keeps it up to 15 s).
      await().atMost(TIMEOUT).until(() -> hostname.equals(leaseHolder()));

      assertThat(MetricsEndpoint.get(port, "/metrics").body()).contains("operator_sdk_reconciliations_executions_checkpoint");
    } finally {
      assertStopsOnSigterm(operator);
    }
  }

  @Test
  void theAgentPublishesItsNodeAndStopsOnSigterm() throws Exception {
    int port = freePort();
    String node = "jar-" + UUID.randomUUID().toString().substring(0, 6);
    Role agent = start("agent-pod", "agent", "--node=" + node, "--work-dir=" + dir.resolve("work"),
        "--criu=" + Main.criuPath(null), "--metrics-port=" + port);
    try {
      await().atMost(TIMEOUT).until(() -> ready(port));
      assertThat(admin.resources(NodeProfile.class).withName(node).get()).isNotNull();
      assertThat(MetricsEndpoint.value(MetricsEndpoint.get(port, "/metrics").body(), "stasis_queue_depth",
          "node=\"" + node + "\"", "kind=\"checkpoint\"")).hasValue(0.0);
    } finally {
      assertStopsOnSigterm(agent);
    }
  }

  /**
   * What a new user types first: {@code local --help} prints help and starts nothing (no control
   * plane, no port bound), and a misspelled flag is refused naming the right one, before anything starts.
   */
  @Test
  void localHelpStartsNothingAndAMisspelledFlagIsRefused() throws Exception {
    int port = freePort();
    Role help = start("local-help", "local", "--metrics-port=" + port, "--state-dir=" + dir.resolve("state"), "--help");
    assertThat(help.process().waitFor(30, TimeUnit.SECONDS)).as("help returns at once").isTrue();
    assertThat(help.process().exitValue()).isZero();
    assertThat(Files.readString(help.log())).startsWith("Usage: stasis local").contains("--max-concurrent=N");
    assertThat(dir.resolve("state")).as("no state folder, no control plane").doesNotExist();
    try (ServerSocket stillFree = new ServerSocket(port)) {
      assertThat(stillFree.getLocalPort()).isEqualTo(port);
    }

    Role misspelled = start("local-typo", "local", "--metrics-prot", Integer.toString(port));
    assertThat(misspelled.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(misspelled.process().exitValue()).isEqualTo(2);
    assertThat(Files.readString(misspelled.log())).contains("Unknown option", "'--metrics-prot'",
        "Possible solutions: --metrics-port");
    assertThat(dir.resolve(".stasis")).doesNotExist();
  }

  /** A role running as its own process, with its output in a log file. */
  record Role(Process process, Path log) {}

  private Role start(String hostname, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar", TestControlPlane.stasisJar().toString()));
    command.addAll(List.of(args));
    command.add("--kubeconfig=" + TestControlPlane.kubeconfig());
    command.add("--metrics-address=127.0.0.1");
    Path log = dir.resolve(hostname + "-" + args[0] + ".log");
    ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile());
    pb.environment().put("HOSTNAME", hostname); // what a pod's HOSTNAME is: its name
    return new Role(pb.start(), log);
  }

  private static void assertStopsOnSigterm(Role role) throws Exception {
    long before = System.nanoTime();
    role.process().destroy(); // SIGTERM, by PID
    boolean ended = role.process().waitFor(20, TimeUnit.SECONDS);
    if (!ended) {
      role.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    assertThat(ended).as("ended within 20 s of SIGTERM:\n%s", Files.readString(role.log())).isTrue();
    System.out.printf("stopped in %d ms%n", Duration.ofNanos(System.nanoTime() - before).toMillis());
  }

  private static String leaseHolder() {
    Lease lease = admin.leases().inNamespace("stasis-system").withName("stasis-operator").get();
    return lease == null ? null : lease.getSpec().getHolderIdentity();
  }

  private static boolean ready(int port) {
    try {
      return MetricsEndpoint.get(port, "/readyz").status() == 200;
    } catch (Exception e) {
      return false; // not listening yet
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }
}
