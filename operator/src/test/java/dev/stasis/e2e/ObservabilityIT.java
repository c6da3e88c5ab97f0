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
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Tool;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a cluster's log search and its Grafana get from Stasis: the operator and an agent run as their
 * images run them ({@code java -jar stasis.jar operator|agent}), with {@code --log-format json} and, as
 * someone chasing a problem would set it, {@code --log-level debug}, through an encrypted checkpoint to
 * S3 with credentials and its restore. Every log line is one JSON object; the lines about the checkpoint
 * carry its namespace, name, uid, node and attempt; no key or credential used appears anywhere; and
 * every query of the chart's Grafana dashboard names only metrics the two processes exported.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ObservabilityIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  static final ObjectMapper JSON = new ObjectMapper();
  static final Tool DASHBOARD_CHECK = new Tool("dashboard-check");
  static final Path DASHBOARD = TestControlPlane.repoRoot().resolve("charts/stasis/dashboards/stasis.json");

  @TempDir static Path dir;
  final List<AutoCloseable> cleanup = new ArrayList<>();
  S3Server s3;
  byte[] key;
  String namespace;
  String node;
  String uid;
  String nodeKey;
  /** What each role's /metrics said at the end of the run. */
  final List<Path> scrapes = new ArrayList<>();
  final List<Role> roles = new ArrayList<>();

  @BeforeAll
  void checkpointAndRestoreThroughTheJar() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    node = "obs-" + UUID.randomUUID().toString().substring(0, 6);
    namespace = TestControlPlane.newNamespace("obs");
    s3 = S3Server.start();
    cleanup.add(s3);
    s3.createBucket("logged");
    key = new byte[32];
    new SecureRandom().nextBytes(key);
    TestStorage.s3(node, s3.endpoint(), "logged").credentials(s3).create(admin);
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
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 2);

    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder().withName("logged").withNamespace(namespace).build());
    checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) counter.pid())));
    checkpoint.getSpec().storage = node;
    checkpoint = admin.resource(checkpoint).create();
    uid = checkpoint.getMetadata().getUid();
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
    nodeKey = Files.readString(dir.resolve("work").resolve("node-key")).lines().findFirst().orElseThrow();

    // The agent counts a finished restore just after writing its status.
    String agentMetrics = await().atMost(TIMEOUT).until(() -> MetricsEndpoint.get(agent.metricsPort(), "/metrics").body(),
        m -> MetricsEndpoint.value(m, "stasis_restores_total", "result=\"Completed\"").isPresent());
    scrapes.add(Files.writeString(dir.resolve("agent.prom"), agentMetrics));
    scrapes.add(Files.writeString(dir.resolve("operator.prom"), MetricsEndpoint.get(operator.metricsPort(), "/metrics").body()));
    operator.stop();
    agent.stop();
  }

  @AfterAll
  void cleanUp() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      cleanup.get(i).close();
    }
  }

  @Test
  void jsonLinesCarryTheResourcesFieldsAndNoSecret() throws Exception {
    List<JsonNode> lines = new ArrayList<>();
    for (Role role : roles) {
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

  /** Grafana's schema reads the dashboard as written, and no panel asks Prometheus for a metric that is not there. */
  @Test
  void theGrafanaDashboardNamesOnlyMetricsTheRunExported() throws Exception {
    String output = check(DASHBOARD).ok().output();
    System.out.println(output);
    assertThat(output).contains("stasis_checkpoints_total", "stasis_restores_total",
        "stasis_checkpoint_duration_seconds_bucket", "stasis_criu_frozen_time_seconds_bucket", "stasis_upload_bytes_total",
        "stasis_queue_depth", "stasis_storage_available", "stasis_work_done_bytes", "stasis_work_expected_bytes",
        "stasis_work_moved_bytes_total", "stasis_migrations_total", "stasis_migration_frozen_to_running_seconds_bucket",
        "stasis_failovers_total", "stasis_failover_down_time_seconds_bucket");
  }

  /** The check above can fail: a misspelled metric, a query Prometheus cannot parse, a field Grafana does not know. */
  @Test
  void aDashboardAskingForWhatStasisDoesNotExportIsRefused() throws Exception {
    String board = Files.readString(DASHBOARD);
    Path misspelled = Files.writeString(dir.resolve("misspelled.json"),
        board.replace("stasis_restores_total", "stasis_restore_total"));
    assertThat(check(misspelled)).satisfies(r -> assertThat(r.exitCode()).isEqualTo(1))
        .extracting(Tool.Result::output).asString()
        .contains("panel \"Restores per minute, by result and reason\"", "stasis_restore_total is not a metric Stasis exported");
    Path broken = Files.writeString(dir.resolve("broken.json"), board.replace("sum by (node, kind)", "sum by node, kind"));
    assertThat(check(broken).output()).contains("panel \"Queue depth per node\"", "is not PromQL");
    Path unknownField = Files.writeString(dir.resolve("unknown-field.json"), board.replace("\"graphTooltip\"", "\"graphTooltips\""));
    assertThat(check(unknownField)).satisfies(r -> assertThat(r.exitCode()).isEqualTo(1))
        .extracting(Tool.Result::output).asString().contains("is not a dashboard Grafana reads as written");
  }

  private Tool.Result check(Path dashboard) throws Exception {
    List<String> args = new ArrayList<>();
    for (Path scrape : scrapes) {
      args.addAll(List.of("--metrics", scrape.toString()));
    }
    args.add(dashboard.toString());
    return DASHBOARD_CHECK.run(null, args.toArray(String[]::new));
  }

  private static CheckpointPhase phase(KubernetesClient admin, String namespace) {
    Checkpoint c = admin.resources(Checkpoint.class).inNamespace(namespace).withName("logged").get();
    return c == null || c.getStatus() == null ? null : c.getStatus().phase;
  }

  /** A role as its own process, stopped with SIGTERM. */
  record Role(String name, Process process, Path log, int metricsPort) {
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
        "-XX:TieredStopAtLevel=1", "-jar", TestControlPlane.stasisJar().toString(), role, "--log-format=json", "--log-level=debug",
        "--kubeconfig=" + TestControlPlane.kubeconfig(), "--metrics-address=127.0.0.1", "--metrics-port=" + port));
    command.addAll(List.of(args));
    Path log = dir.resolve(role + ".log");
    Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    Role started = new Role(role, process, log, port);
    roles.add(started);
    cleanup.add(() -> {
      if (process.isAlive()) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    });
    await().atMost(TIMEOUT).until(() -> {
      try {
        return MetricsEndpoint.get(port, "/readyz").status() == 200;
      } catch (IOException e) {
        return false; // not listening yet
      }
    });
    return started;
  }
}
