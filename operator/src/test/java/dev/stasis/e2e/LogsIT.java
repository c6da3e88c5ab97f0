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
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.SecretReference;
import dev.stasis.cli.Main;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a cluster's log search gets from Stasis: the operator and an agent run as their images run
 * them ({@code java -jar stasis.jar operator|agent}), with {@code --log-format json} and, as someone
 * chasing a problem would set it, {@code --log-level debug}, through an encrypted checkpoint to S3
 * with credentials and its restore. Every line is one JSON object; the lines about the checkpoint
 * carry its namespace, name, uid, node and attempt; and no key or credential used appears anywhere.
 */
class LogsIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  @Test
  void jsonLinesCarryTheResourcesFieldsAndNoSecret() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    String node = "logs-" + UUID.randomUUID().toString().substring(0, 6);
    String namespace = TestControlPlane.newNamespace("logs");
    S3Server s3 = S3Server.start();
    cleanup.add(s3);
    s3.createBucket("logged");
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    AgentShutdownIT.createStorage(admin, node, s3, s3.endpoint(), "logged");
    admin.resource(new SecretBuilder().withNewMetadata().withName(node + "-keys").withNamespace("default").endMetadata()
        .withData(Map.of("k1", Base64.getEncoder().encodeToString(key))).build()).create();
    admin.resources(CheckpointStorage.class).withName(node).edit(s -> {
      s.getSpec().encryption = new EncryptionSpec(new SecretReference(node + "-keys", "default"), "k1");
      return s;
    });

    Role operator = start("operator", "--retry-backoff=2s");
    Role agent = start("agent", "--node=" + node, "--work-dir=" + dir.resolve("work"), "--criu=" + Main.criuPath(null),
        "--allow-host-processes=" + namespace);
    Path count = dir.resolve("count");
    var counter = Workloads.startInPidNamespace("counter", count.toString());
    cleanup.add(counter);
    await().atMost(TIMEOUT).until(() -> EndToEndTest.count(count) >= 2);

    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder().withName("logged").withNamespace(namespace).build());
    checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) counter.pid())));
    checkpoint.getSpec().storage = node;
    checkpoint = admin.resource(checkpoint).create();
    String uid = checkpoint.getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> phase(admin, namespace) != null && phase(admin, namespace).isTerminal());
    assertThat(phase(admin, namespace)).isEqualTo(CheckpointPhase.Completed);
    counter.close();

    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("logged").withNamespace(namespace).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef("logged");
    admin.resource(restore).create();
    Restore restored = await().atMost(TIMEOUT).until(
        () -> admin.resources(Restore.class).inNamespace(namespace).withName("logged").get(),
        r -> r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.isTerminal());
    assertThat(restored.getStatus().phase).as("%s", restored.getStatus().message).isEqualTo(RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    String nodeKey = Files.readString(dir.resolve("work").resolve("node-key")).lines().findFirst().orElseThrow();
    operator.stop();
    agent.stop();

    List<JsonNode> lines = new ArrayList<>();
    for (Role role : List.of(operator, agent)) {
      String log = Files.readString(role.log());
      // Nothing the run used to reach storage or open archives, in any encoding a log might hold it.
      assertThat(log).as("the %s's log", role.name())
          .doesNotContain(s3.secretKey(), s3.accessKey(), Base64.getEncoder().encodeToString(key),
              HexFormat.of().formatHex(key), Base64.getEncoder().encodeToString(s3.secretKey().getBytes()), nodeKey);
      for (String line : log.lines().filter(l -> !l.isBlank()).toList()) {
        lines.add(JSON.readTree(line)); // every line is one JSON object
      }
    }
    assertThat(lines).as("both roles logged at debug").hasSizeGreaterThan(100);
    assertThat(lines).allSatisfy(line -> assertThat(line.has("timestamp") && line.has("level")
        && line.has("loggerName") && line.has("formattedMessage")).as("%s", line).isTrue());

    List<JsonNode> aboutIt = lines.stream().filter(l -> uid.equals(l.path("mdc").path("resource.uid").asText())).toList();
    assertThat(aboutIt).as("lines about the checkpoint").isNotEmpty().allSatisfy(line -> {
      assertThat(line.path("mdc").path("resource.namespace").asText()).isEqualTo(namespace);
      assertThat(line.path("mdc").path("resource.name").asText()).isEqualTo("logged");
    });
    System.out.println("a line about the checkpoint: " + aboutIt.get(aboutIt.size() - 1));
    assertThat(aboutIt).as("the agent's lines about its work name the node and the attempt")
        .anySatisfy(line -> {
          assertThat(line.path("mdc").path("node").asText()).isEqualTo(node);
          assertThat(line.path("mdc").path("attempt").asText()).isEqualTo("1");
          assertThat(line.path("formattedMessage").asText()).contains("Completed");
        });
  }

  private static CheckpointPhase phase(KubernetesClient admin, String namespace) {
    Checkpoint c = admin.resources(Checkpoint.class).inNamespace(namespace).withName("logged").get();
    return c == null || c.getStatus() == null ? null : c.getStatus().phase;
  }

  /** A role as its own process, stopped with SIGTERM. */
  record Role(String name, Process process, Path log) {
    void stop() throws InterruptedException {
      process.destroy();
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  private Role start(String role, String... args) throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:TieredStopAtLevel=1", "-jar", RunnableJarIT.JAR.toString(), role, "--log-format=json", "--log-level=debug",
        "--kubeconfig=" + TestControlPlane.kubeconfig(), "--metrics-address=127.0.0.1", "--metrics-port=" + port));
    command.addAll(List.of(args));
    Path log = dir.resolve(role + ".log");
    Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    Role started = new Role(role, process, log);
    cleanup.add(() -> {
      if (process.isAlive()) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    });
    await().atMost(TIMEOUT).until(() -> {
      try {
        return MetricsIT.get(port, "/readyz").status() == 200;
      } catch (IOException e) {
        return false; // not listening yet
      }
    });
    return started;
  }
}
