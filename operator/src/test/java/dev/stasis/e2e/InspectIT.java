package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.cli.Main;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.ObjectUpload;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.ServiceAccounts;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code stasis inspect} and {@code kubectl stasis inspect} as users run them (the jar, the plugin
 * script through the real kubectl) on checkpoints of real workloads that real CRIU took and the
 * agent stored: a fork tree, a process holding an established TCP connection, an encrypted archive;
 * and refusals where what storage returns is not what the Checkpoint's status recorded.
 */
class InspectIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();
  static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void aForkTreeShowsItsProcessesFilesMemoryStatisticsAndWhichNodesCanRestoreIt() throws Exception {
    Path dir = Files.createDirectories(cluster.dir().resolve("inspect-tree-" + cluster.namespace()));
    var tree = cluster.track(Workloads.startInPidNamespace("forktree", dir.toString(), "3"));
    await().atMost(TIMEOUT).until(() -> Workloads.count(dir.resolve("count.3")) >= 2);
    cluster.awaitCheckpoint(cluster.createCheckpoint("tree", tree.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);

    JsonNode report = JSON.readTree(inspect("tree", "-n", cluster.namespace(), "--format", "json").ok());
    JsonNode dump = report.at("/archives/0/dump");
    List<JsonNode> processes = list(dump.get("processes"));
    assertThat(processes).extracting(p -> p.get("pid").asLong()).containsExactly(1L, 2L, 3L, 4L);
    assertThat(processes).extracting(p -> p.get("ppid").asLong()).containsExactly(0L, 1L, 1L, 1L);
    String binary = Workloads.binary("forktree").toString();
    for (int i = 0; i < 4; i++) {
      JsonNode p = processes.get(i);
      Path countFile = dir.resolve("count." + i);
      assertThat(p.get("command").asText()).isEqualTo("forktree");
      assertThat(list(p.get("arguments"))).extracting(JsonNode::asText).containsExactly(binary, dir.toString(), "3");
      assertThat(p.get("executable").asText()).isEqualTo(binary);
      assertThat(p.get("cwd").asText()).isEqualTo(Path.of("").toAbsolutePath().toString());
      assertThat(p.get("root").asText()).isEqualTo("/");
      assertThat(list(p.get("files"))).as("process %d's open files", i + 1)
          .anySatisfy(f -> {
            assertThat(f.get("path").asText()).isEqualTo(countFile.toString());
            assertThat(f.get("mode").asText()).isEqualTo("w");
          });
      assertThat(p.at("/memory/mappedBytes").asLong()).isGreaterThan(p.at("/memory/dumpedBytes").asLong());
      assertThat(p.at("/memory/dumpedBytes").asLong()).isPositive();
    }
    assertThat(dump.get("pagesBytes").asLong()).isEqualTo(processes.stream()
        .mapToLong(p -> p.at("/memory/dumpedBytes").asLong()).sum());
    assertThat(report.at("/stats/frozenTimeMicros").asLong()).isPositive();
    assertThat(report.at("/criu/version").asText()).matches("\\d+\\.\\d+.*");
    assertThat(report.at("/sourceNode/arch").asText()).isEqualTo("x86_64");
    assertThat(report.at("/archives/0/sha256").asText()).isEqualTo(cluster.checkpoint("tree").getStatus().archive.sha256);
    assertThat(verdict(report, cluster.node())).isEmpty();
    assertThat(verdict(report, cluster.noCriuNode())).anyMatch(r -> r.contains("CRIU"));
    assertThat(verdict(report, cluster.oldCriuNode())).anyMatch(r -> r.contains("3.17.1"));

    String text = inspect("tree", "-n", cluster.namespace()).ok();
    System.out.println(text);
    assertThat(text).contains("Checkpoint:        " + cluster.namespace() + "/tree", "Process tree",
        "    [1] forktree  " + binary + " " + dir + " 3\n",
        "    ├── [2] forktree", "    ├── [3] forktree", "    └── [4] forktree",
        "w  file    " + dir.resolve("count.0"), "CRIU statistics:   frozen ", "Nodes that can restore it")
        .containsPattern("\n  " + cluster.node() + " +yes\n").containsPattern("\n  " + cluster.noCriuNode() + " +no: ");
  }

  @Test
  void aProcessWithAnEstablishedLoopbackConnectionShowsBothEndsAndAnotherNodeOfTheSameKindCanRestoreIt() throws Exception {
    Path out = cluster.dir().resolve("inspect-pair-" + cluster.namespace() + ".txt");
    var pair = cluster.track(Workloads.startInPidNamespace("tcppair", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    CheckpointOptions options = new CheckpointOptions();
    options.tcpEstablished = true;
    cluster.awaitCheckpoint(cluster.createCheckpoint("pair", pair.pid(), cluster.s3Storage(), options), CheckpointPhase.Completed);

    String twin = cluster.node() + "-twin";
    JsonNode report;
    try (var agent = InProcessStasis.on(cluster.client()).withoutOperator()
        .agent(twin, cluster.dir().resolve("work-twin"), Main.criuPath(null)).start()) {
      await().atMost(TIMEOUT).until(() -> cluster.client().resources(NodeProfile.class).withName(twin).get() != null);
      report = JSON.readTree(inspect("pair", "-n", cluster.namespace(), "-o", "json").ok());
    } finally {
      cluster.client().resources(NodeProfile.class).withName(twin).delete(); // no node without an agent for later tests
    }
    List<JsonNode> sockets = new ArrayList<>();
    for (JsonNode p : report.at("/archives/0/dump/processes")) {
      for (JsonNode f : p.get("files")) {
        if (f.has("socket")) {
          sockets.add(f.get("socket"));
        }
      }
    }
    assertThat(sockets).hasSize(2).allSatisfy(s -> {
      assertThat(s.get("protocol").asText()).isEqualTo("tcp");
      assertThat(s.get("type").asText()).isEqualTo("stream");
      assertThat(s.get("state").asText()).isEqualTo("ESTABLISHED");
      assertThat(s.get("local").asText()).startsWith("127.0.0.1:");
    });
    assertThat(sockets.get(0).get("local").asText()).isEqualTo(sockets.get(1).get("remote").asText());
    assertThat(sockets.get(1).get("local").asText()).isEqualTo(sockets.get(0).get("remote").asText());
    assertThat(verdict(report, cluster.node())).isEmpty();
    // Both ends are in the tree (a loopback pair): CRIU restores the connection whole, with its loopback
    // addresses, on any node (SharedMemoryJobIT restores mpirun's such connections on another node), so
    // another node of the same kind can restore it, and one that cannot says why without naming the
    // connection (PlacementTest: a connection to anything outside the tree keeps it on its node).
    assertThat(verdict(report, twin)).isEmpty();
    assertThat(verdict(report, cluster.oldCriuNode())).anyMatch(r -> r.contains("3.17.1"))
        .noneMatch(r -> r.contains("established TCP connections"));

    assertThat(inspect("pair", "-n", cluster.namespace()).ok())
        .contains("tcp stream  " + sockets.get(0).get("local").asText() + " -> " + sockets.get(0).get("remote").asText()
            + "  ESTABLISHED");
  }

  /**
   * Decrypted with the storage's key, read from its Secret as the operator reads it; someone who
   * may read Checkpoints but not that Secret is told what is missing.
   */
  /** A deduplicated checkpoint: its memory is put together from its chunks, each checked, and the report says so. */
  @Test
  void aDeduplicatedCheckpointIsReadFromItsChunksAndShowsWhatItAddedToTheStorage() throws Exception {
    String storage = "inspect-dedup-" + UUID.randomUUID().toString().substring(0, 6);
    TestStorage.filesystem(storage, cluster.dir().resolve(storage)).with(spec -> spec.deduplication = true)
        .create(cluster.client());
    Path out = cluster.dir().resolve("inspect-dedup-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    Checkpoint checkpoint = cluster.awaitCheckpoint(cluster.createCheckpoint("dedup", counter.pid(), storage, null),
        CheckpointPhase.Completed);

    JsonNode report = JSON.readTree(inspect("dedup", "-n", cluster.namespace(), "-o", "json").ok());
    JsonNode deduplicated = report.at("/archives/0/deduplicated");
    assertThat(deduplicated.get("chunks").asInt()).as("16 MiB in 128 KiB chunks, and some").isGreaterThan(16 * 8);
    assertThat(deduplicated.get("newBytes").asLong()).isEqualTo(checkpoint.getStatus().archive.newBytes);
    assertThat(deduplicated.get("imagesBytes").asLong()).isGreaterThan(16L << 20)
        .isEqualTo(report.at("/archives/0/dump/pagesBytes").asLong());
    assertThat(list(report.at("/archives/0/dump/processes/0/arguments"))).as("read from memory put together from chunks")
        .extracting(JsonNode::asText).containsExactly(Workloads.binary("memcounter").toString(), "16", out.toString());
    assertThat(inspect("dedup", "-n", cluster.namespace()).ok()).contains("  Deduplicated", " chunks (",
        "  Added");
  }

  @Test
  void anEncryptedArchiveIsReadWithTheStoragesKeyAndRefusedToWhoCannotReadIt() throws Exception {
    String storage = "inspect-enc-" + UUID.randomUUID().toString().substring(0, 6);
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    cluster.client().resource(new SecretBuilder().withNewMetadata().withName(storage + "-keys").withNamespace("default")
        .endMetadata().withData(Map.of("k1", Base64.getEncoder().encodeToString(key))).build()).create();
    TestStorage.filesystem(storage, cluster.dir().resolve(storage)).create(cluster.client());
    cluster.client().resources(CheckpointStorage.class).withName(storage).edit(s -> {
      s.getSpec().encryption = new EncryptionSpec(new SecretReference(storage + "-keys", "default"), "k1");
      return s;
    });
    Path out = cluster.dir().resolve("inspect-enc-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    cluster.awaitCheckpoint(cluster.createCheckpoint("secret", counter.pid(), storage, null), CheckpointPhase.Completed);

    JsonNode report = JSON.readTree(inspect("secret", "-n", cluster.namespace(), "-o", "json").ok());
    assertThat(report.at("/archives/0/encryptionKey").asText()).isEqualTo("k1");
    assertThat(report.at("/archives/0/dump/processes/0/command").asText()).isEqualTo("counter");

    Path viewer = kubeconfigOfAViewer();
    Result refused = inspect("secret", "-n", cluster.namespace(), "--kubeconfig", viewer.toString());
    assertThat(refused.exit()).isEqualTo(1);
    assertThat(refused.err()).startsWith("stasis inspect: ").doesNotContain("create it").contains("the archive is encrypted with key 'k1' of CheckpointStorage '" + storage + "'",
        "Secret default/" + storage + "-keys", "needs get on that Secret");
    assertThat(refused.out()).isEmpty();
  }

  @Test
  void whatStorageReturnsIsCheckedAgainstTheCheckpointsStatus() throws Exception {
    Path out = cluster.dir().resolve("inspect-tamper-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("tampered", counter.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    inspect("tampered", "-n", cluster.namespace()).ok();

    try (ObjectStore store = cluster.openStorage(cluster.fsStorage())) {
      RecordedManifest recorded = RecordedManifest.read(store, done, null);
      byte[] archive = store.read(recorded.archiveKey());
      archive[archive.length / 2] ^= 1;
      overwrite(store, recorded.archiveKey(), archive);
      Result corrupted = inspect("tampered", "-n", cluster.namespace());
      assertThat(corrupted.exit()).isEqualTo(1);
      assertThat(corrupted.err()).contains("ArchiveCorrupted", "sha256 mismatch");

      String manifestKey = new ArchiveLayout(cluster.namespace(), "tampered", done.getMetadata().getUid()).manifestKey();
      byte[] manifest = store.read(manifestKey);
      overwrite(store, manifestKey, new String(manifest, StandardCharsets.UTF_8).replace("\"node\"", "\"node\" ")
          .getBytes(StandardCharsets.UTF_8));
      Result tampered = inspect("tampered", "-n", cluster.namespace());
      assertThat(tampered.exit()).isEqualTo(1);
      assertThat(tampered.err()).contains("ManifestTampered");
    }

    cluster.awaitCheckpoint(cluster.createCheckpoint("nowhere", "no-such-node", 4242, cluster.fsStorage(), null), CheckpointPhase.Failed);
    assertThat(inspect("nowhere", "-n", cluster.namespace()).err()).contains("is Failed: only a Completed checkpoint has a stored"
        + " archive to inspect");
    assertThat(inspect("absent", "-n", cluster.namespace()).err()).contains("there is no Checkpoint 'absent' in namespace " + cluster.namespace());
  }

  /** The plugin script the README installs, found by the real kubectl on the PATH, with kubectl's kubeconfig. */
  @Test
  void kubectlStasisInspectRunsThePlugin() throws Exception {
    Path out = cluster.dir().resolve("inspect-plugin-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    cluster.awaitCheckpoint(cluster.createCheckpoint("counter", counter.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);

    Path repo = TestControlPlane.repoRoot();
    ProcessBuilder kubectl = new ProcessBuilder(repo.resolve(".stasis/bin/kubectl").toString(), "stasis", "inspect",
        "counter", "-n", cluster.namespace());
    kubectl.environment().put("PATH", repo.resolve("scripts") + ":" + System.getenv("PATH"));
    kubectl.environment().put("KUBECONFIG", TestControlPlane.kubeconfig().toString());
    kubectl.environment().put("STASIS_JAR", TestControlPlane.stasisJar().toString());
    Result result = run(kubectl);
    assertThat(result.exit()).as(result.err()).isZero();
    assertThat(result.out()).contains("[1] counter", "w  file    " + out, "Nodes that can restore it");
  }

  static List<JsonNode> list(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).toList();
  }

  static List<String> verdict(JsonNode report, String node) {
    for (JsonNode n : report.get("nodes")) {
      if (n.get("node").asText().equals(node)) {
        return list(n.get("reasons")).stream().map(JsonNode::asText).toList();
      }
    }
    throw new AssertionError("no verdict for node " + node + " in " + report.get("nodes"));
  }

  /** A ServiceAccount that may read Checkpoints, storages and node profiles, but no Secret. */
  Path kubeconfigOfAViewer() throws Exception {
    String name = "viewer-" + cluster.namespace();
    if (cluster.client().namespaces().withName(ServiceAccounts.NAMESPACE).get() == null) {
      cluster.client().resource(new NamespaceBuilder().withNewMetadata().withName(ServiceAccounts.NAMESPACE).endMetadata().build())
          .create();
    }
    cluster.client().resource(new ServiceAccountBuilder().withNewMetadata().withName(name).withNamespace(ServiceAccounts.NAMESPACE)
        .endMetadata().build()).create();
    cluster.client().resource(new ClusterRoleBuilder().withNewMetadata().withName(name).endMetadata()
        .addNewRule().withApiGroups("stasis.dev").withResources("checkpoints", "checkpointstorages", "nodeprofiles")
        .withVerbs("get", "list").endRule().build()).create();
    cluster.client().resource(new ClusterRoleBindingBuilder().withNewMetadata().withName(name).endMetadata()
        .withNewRoleRef("rbac.authorization.k8s.io", "ClusterRole", name)
        .addNewSubject().withKind("ServiceAccount").withName(name).withNamespace(ServiceAccounts.NAMESPACE).endSubject()
        .build()).create();
    String token = ServiceAccounts.token(cluster.client(), name, null);
    var admin = cluster.client().getConfiguration();
    Path kubeconfig = cluster.dir().resolve(name + ".kubeconfig");
    Files.writeString(kubeconfig, """
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "%s", certificate-authority-data: "%s"}}]
        users: [{name: u, user: {token: "%s"}}]
        contexts: [{name: c, context: {cluster: c, user: u}}]
        current-context: c
        """.formatted(admin.getMasterUrl(), admin.getCaCertData() != null ? admin.getCaCertData()
            : Base64.getEncoder().encodeToString(Files.readAllBytes(Path.of(admin.getCaCertFile()))), token));
    return kubeconfig;
  }

  static void overwrite(ObjectStore store, String key, byte[] bytes) throws Exception {
    try (ObjectUpload upload = store.upload(key)) {
      upload.stream().write(bytes);
      upload.commit();
    }
  }

  record Result(int exit, String out, String err) {
    String ok() {
      assertThat(exit).as("exit code; stderr: %s", err).isZero();
      return out;
    }
  }

  /** {@code java -jar stasis.jar inspect ARGS} with the test cluster's kubeconfig unless ARGS give one. */
  static Result inspect(String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of(args));
    if (!all.contains("--kubeconfig")) {
      all.addAll(List.of("--kubeconfig", TestControlPlane.kubeconfig().toString()));
    }
    return inspectAs(all);
  }

  /** {@code java -jar stasis.jar inspect ARGS}, as a user runs it. */
  static Result inspectAs(List<String> args) throws Exception {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-jar", TestControlPlane.stasisJar().toString(), "inspect"));
    command.addAll(args);
    return run(new ProcessBuilder(command));
  }

  static Result run(ProcessBuilder builder) throws Exception {
    Path stdout = Files.createTempFile("inspect", ".out");
    Path stderr = Files.createTempFile("inspect", ".err");
    try {
      Process p = builder.redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        throw new AssertionError("did not finish: " + builder.command());
      }
      return new Result(p.exitValue(), Files.readString(stdout), Files.readString(stderr));
    } finally {
      Files.delete(stdout);
      Files.delete(stderr);
    }
  }
}
