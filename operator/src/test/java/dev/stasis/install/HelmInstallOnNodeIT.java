package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.kube.Labels;
import dev.stasis.testing.Helm;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stasis installed on a real node as `make cluster` installs it (scripts/cluster.sh install): its
 * images built by images/build.sh and pulled by containerd from the node's registry, charts/stasis
 * installed by helm. The operator runs as a Deployment with a leader, the agent as a DaemonSet pod
 * that publishes the node's profile, checkpoints and restores a process tree of the node with its
 * own CRIU (images/criu-host in the node's namespaces), serves its metrics, and is held to its own
 * node by the admission policy through the token the kubelet mounted into it. And the README's
 * "Five minutes with pods" works as written.
 */
@ExtendWith(TestNode.Extension.class)
class HelmInstallOnNodeIT {
  static final Duration TIMEOUT = Duration.ofMinutes(2);
  static final String NAMESPACE = "stasis-system";
  static final Path REPO = TestControlPlane.repoRoot();
  static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  static TestNode node;
  static KubernetesClient admin;

  @TempDir Path dir;

  @BeforeAll
  static void install(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    // Everything make cluster does once its node runs: images built and pushed, helm install.
    // The tests' namespaces may checkpoint this machine's processes, which run in no pod.
    ProcessBuilder installing = new ProcessBuilder(REPO.resolve("scripts/cluster.sh").toString(), "install",
        nodeDir().toString()).directory(REPO.toFile()).redirectErrorStream(true);
    installing.environment().put("ALLOW_HOST_PROCESSES", "*");
    Process install = installing.start();
    String output = new String(install.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(install.waitFor(15, TimeUnit.MINUTES)).isTrue();
    assertThat(install.exitValue()).as("scripts/cluster.sh install:\n%s", output).isZero();
  }

  @AfterAll
  static void uninstall() throws Exception {
    if (node == null) {
      return;
    }
    new Helm(node.kubeconfig()).run("uninstall", "stasis", "-n", NAMESPACE, "--wait").ok();
    // The chart took over config/rbac, which the node's other tests rely on: put it back.
    new Kubectl(node.kubeconfig()).run("apply", "-k", "config/rbac").ok();
  }

  @Test
  void theOperatorLeadsAndTheAgentPodPublishesTheNodesProfile() throws Exception {
    List<String> operators = podNames("operator");
    assertThat(operators).hasSize(2);
    assertThat(admin.apps().deployments().inNamespace(NAMESPACE).withName("stasis-operator").get().getStatus()
        .getReadyReplicas()).isEqualTo(2);
    await().atMost(TIMEOUT).until(() -> operators.contains(admin.leases().inNamespace(NAMESPACE)
        .withName("stasis-operator").get().getSpec().getHolderIdentity()));
    await().atMost(TIMEOUT).until(() -> admin.apps().daemonSets().inNamespace(NAMESPACE).withName("stasis-agent").get()
        .getStatus().getNumberReady() == 1);

    // Published anew by the agent pod, the only agent of the node while this class runs.
    admin.resources(NodeProfile.class).withName(node.name()).delete();
    await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(node.name()).get() != null);
    NodeProfileSpec profile = admin.resources(NodeProfile.class).withName(node.name()).get().getSpec();
    assertThat(profile.criu.version).isEqualTo("4.2.1");
    assertThat(profile.criu.checkPassed).as(profile.criu.checkMessage).isTrue();
    // The image has no /etc/os-release: this is the node's, read under /proc/<pid>/root.
    assertThat(profile.os.prettyName).isEqualTo(osRelease("PRETTY_NAME"));
    // The runtime as the kubelet reports it; its configuration read as the node has it (agent.runtime).
    assertThat(profile.runtime.name + " " + profile.runtime.version).isEqualTo("containerd 2.3.4");
    assertThat(profile.runtime.restore.source).isEqualTo(NodeProfileSpec.RuntimeRestore.FROM_CONFIG);
    assertThat(profile.runtime.restore.message).as(profile.runtime.restore.message).isEqualTo("containerd 2.3.4"
        + " restores from checkpoint images: enable_experimental_restore_via_create = true in "
        + node.runtime().containerdConfig());
  }

  @Test
  void theAgentPodCheckpointsAndRestoresAProcessTreeOfTheNodeWithItsOwnCriu() throws Exception {
    String namespace = node.newNamespace("helm-process");
    Path count = dir.resolve("count.txt");
    long countAtEnd;
    try (var counter = Workloads.startInPidNamespace("counter", count.toString())) {
      await().atMost(TIMEOUT).until(() -> count(count) > 5);
      Checkpoint checkpoint = new Checkpoint();
      checkpoint.setMetadata(new ObjectMetaBuilder().withName("counter").withNamespace(namespace).build());
      checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node.name(), (int) counter.pid())));
      // Ended by CRIU once the archive is stored: its post-dump hook runs where criu-host runs CRIU, in the
      // host's namespaces, and answers the agent pod through FIFOs in the work folder both see.
      checkpoint.getSpec().options = new CheckpointOptions();
      checkpoint.getSpec().options.leaveRunning = false;
      admin.resource(checkpoint).create();
      await().atMost(TIMEOUT).until(() -> checkpointStatus(namespace).phase != null && checkpointStatus(namespace).phase.isTerminal());
      CheckpointStatus done = checkpointStatus(namespace);
      assertThat(done.phase).as("%s\n%s", done.message, done.criuLogTail).isEqualTo(CheckpointPhase.Completed);
      await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
      countAtEnd = count(count);
    }

    long restoreAsked = System.nanoTime();
    long pid = Restores.completed(admin, namespace, "counter", TIMEOUT).getStatus().restoredPid;
    try {
      // On from where CRIU ended it (a new counter would start at 1), and counting on: by no more
      // than one count per 100 ms since the restore was asked for.
      await().atMost(TIMEOUT).until(() -> count(count) > countAtEnd);
      long first = count(count);
      long ticks = (System.nanoTime() - restoreAsked) / 100_000_000;
      assertThat(first).as("the first count after the restore").isLessThanOrEqualTo(countAtEnd + ticks + 1);
      await().atMost(TIMEOUT).until(() -> count(count) > first + 5);

      // Its parent is the CRIU that restored it: the agent pod's, the host copy that
      // install-host-criu made in the work folder, running in the agent container's cgroup.
      long criu = parent(pid);
      assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(criu), "exe")).toString())
          .startsWith(nodeDir().resolve("stasis/work/criu").toString());
      Pod agent = admin.pods().inNamespace(NAMESPACE).withName(podNames("agent").get(0)).get();
      assertThat(Files.readString(Path.of("/proc", Long.toString(criu), "cgroup")))
          .contains("pod" + agent.getMetadata().getUid());
    } finally {
      Workloads.kill(pid);
    }
  }

  @Test
  void bothPodsServeTheirMetrics() throws Exception {
    Pod agent = admin.pods().inNamespace(NAMESPACE).withName(podNames("agent").get(0)).get();
    assertThat(get(agent, 8081, "/metrics")).contains("stasis_node_work_running{node=\"" + node.name() + "\"}",
        "stasis_queue_depth{kind=\"checkpoint\",node=\"" + node.name() + "\"}");

    await().atMost(TIMEOUT).until(() -> admin.leases().inNamespace(NAMESPACE).withName("stasis-operator").get() != null);
    String leader = admin.leases().inNamespace(NAMESPACE).withName("stasis-operator").get().getSpec().getHolderIdentity();
    for (String name : podNames("operator")) {
      Pod operator = admin.pods().inNamespace(NAMESPACE).withName(name).get();
      get(operator, 8080, "/readyz"); // a standby is ready too
      get(operator, 8080, "/metrics");
      if (name.equals(leader)) {
        await().atMost(TIMEOUT).until(() -> get(operator, 8080, "/metrics").contains("stasis_storage_available{storage=\"default\"} 1.0"));
        assertThat(get(operator, 8080, "/metrics")).contains("operator_sdk_reconciliations_executions_checkpoint");
      }
    }
  }

  @Test
  void theAdmissionPolicyHoldsTheAgentPodsOwnTokenToItsNode() throws Exception {
    Pod agent = admin.pods().inNamespace(NAMESPACE).withName(podNames("agent").get(0)).get();
    // The token the kubelet requested for the pod and mounted into it (the projected volume "token").
    Path tokenFile = node.checkpointDir().getParent().resolve("pods").resolve(agent.getMetadata().getUid())
        .resolve("volumes/kubernetes.io~projected/token/token");
    Config config = new ConfigBuilder(Config.empty()).withMasterUrl(admin.getConfiguration().getMasterUrl())
        .withCaCertFile(node.clusterCa().toString()).withOauthToken(Files.readString(tokenFile)).build();
    String elsewhere = "elsewhere-" + UUID.randomUUID().toString().substring(0, 6);
    await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(node.name()).get() != null);
    NodeProfile other = new NodeProfile();
    other.setMetadata(new ObjectMetaBuilder().withName(elsewhere).build());
    other.setSpec(admin.resources(NodeProfile.class).withName(node.name()).get().getSpec());
    admin.resource(other).create();
    String namespace = node.newNamespace("helm-admission");
    Checkpoint foreign = new Checkpoint();
    foreign.setMetadata(new ObjectMetaBuilder().withName("foreign").withNamespace(namespace)
        .withLabels(Map.of(Labels.NODE, elsewhere)).build());
    foreign.setSpec(new CheckpointSpec(CheckpointTarget.process(elsewhere, 4242)));
    admin.resource(foreign).create();

    try (KubernetesClient asAgent = new KubernetesClientBuilder().withConfig(config).build()) {
      asAgent.resources(NodeProfile.class).withName(node.name())
          .edit(p -> {
            Map<String, String> labels = new HashMap<>(Objects.requireNonNullElse(p.getMetadata().getLabels(), Map.of()));
            labels.put("example.com/checked", "yes");
            p.getMetadata().setLabels(labels);
            return p;
          });

      assertThatThrownBy(() -> asAgent.resources(NodeProfile.class).withName(elsewhere)
          .edit(p -> { p.getMetadata().setLabels(Map.of("example.com/checked", "yes")); return p; }))
          .isInstanceOfSatisfying(KubernetesClientException.class, e -> assertThat(e.getCode()).as(e.getMessage()).isEqualTo(403))
          .hasMessageContaining("the agent of node " + node.name() + " may only act on its own node's work");
      // The operator writes the new Checkpoint's status meanwhile: an edit that read it just before
      // meets a conflict (409) before admission has its say, and is tried again.
      await().atMost(TIMEOUT).untilAsserted(() ->
          assertThatThrownBy(() -> asAgent.resources(Checkpoint.class).inNamespace(namespace).withName("foreign")
              .editStatus(c -> { c.setStatus(new CheckpointStatus()); c.getStatus().message = "taken"; return c; }))
              .isInstanceOfSatisfying(KubernetesClientException.class, e -> assertThat(e.getCode()).as(e.getMessage()).isEqualTo(403))
              .hasMessageContaining("may only act on its own node's work"));
    } finally {
      admin.resource(other).delete();
    }
  }

  @Test
  void theReadmesPodWalkthroughCountsOnFromTheCheckpoint() throws Exception {
    Kubectl kubectl = new Kubectl(node.kubeconfig());
    // config/samples as they are, but for the port of the node's registry (make cluster's is 5000).
    kubectl.runWithInput(Files.readString(REPO.resolve("config/samples/pod-counter.yaml"))
        .replace("127.0.0.1:5000", node.registry()), "apply", "-f", "-").ok();
    try {
      kubectl.waitFor("Ready", "pod/counter", "100s");
      kubectl.run("apply", "-f", "config/samples/checkpoint-pod.yaml").ok();
      kubectl.waitFor("Complete", "ckpt/pod-counter", "100s");
      long atCheckpoint = lastCount(kubectl);
      await().atMost(TIMEOUT).ignoreExceptions().until(() -> lastCount(kubectl) > atCheckpoint + 3); // it counts on
      long lost = lastCount(kubectl);

      Instant deleted = Instant.now();
      kubectl.run("delete", "pod", "counter").ok();
      kubectl.run("apply", "-f", "config/samples/restore-pod.yaml").ok();
      kubectl.waitFor("Complete", "rst/pod-counter", "100s");
      await().atMost(TIMEOUT).ignoreExceptions().until(() -> lastCount(kubectl) > lost + 3);

      // Its log as the checkpoint holds it: 1, 2, 3, ... up to about the checkpoint.
      Map<Boolean, List<Long>> log = kubectl.run("logs", "counter", "--timestamps").ok().output().lines()
          .map(l -> l.split(" ")).collect(Collectors.partitioningBy(f -> Instant.parse(f[0]).isAfter(deleted),
              Collectors.mapping(f -> Long.parseLong(f[1].strip()), Collectors.toList())));
      List<Long> checkpointed = log.get(false);
      List<Long> restored = log.get(true);
      assertThat(checkpointed).as("the restored pod's log up to the checkpoint")
          .isEqualTo(LongStream.rangeClosed(1, checkpointed.size()).boxed().toList());
      assertThat(checkpointed.get(checkpointed.size() - 1)).isLessThan(lost);
      // Then the restored process, taking up the count where the checkpoint left it (a count or two
      // may repeat: containerd copies the log just after CRIU took the memory), not where it was lost.
      long first = restored.get(0);
      assertThat(first).as("the first count after the restore; the log held %s", checkpointed)
          .isBetween(checkpointed.size() - 1L, checkpointed.size() + 1L).isLessThan(lost);
      assertThat(restored).as("counting on").isEqualTo(LongStream.range(first, first + restored.size()).boxed().toList());
    } finally {
      kubectl.run("delete", "--ignore-not-found", "--wait=false", "pod/counter", "rst/pod-counter", "ckpt/pod-counter").ok();
    }
  }

  private static long lastCount(Kubectl kubectl) throws Exception {
    List<String> lines = kubectl.run("logs", "counter", "--tail=1").ok().output().lines().toList();
    return lines.isEmpty() ? 0 : Long.parseLong(lines.get(lines.size() - 1).strip());
  }

  @Test
  void makeClusterWhileANodeRunsSaysSoAndStartsNothing() throws Exception {
    Process cluster = new ProcessBuilder(REPO.resolve("scripts/cluster.sh").toString()).directory(REPO.toFile())
        .redirectErrorStream(true).start();
    String output = new String(cluster.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(cluster.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(cluster.exitValue()).isEqualTo(1);
    assertThat(output).contains("a node already runs on this machine, started in " + nodeDir());
    assertThat(REPO.resolve(".stasis/node/node.env")).doesNotExist();
    assertThat(admin.nodes().list().getItems()).hasSize(1);
  }

  private static Path nodeDir() {
    return node.dir();
  }

  private static List<String> podNames(String component) {
    return admin.pods().inNamespace(NAMESPACE).withLabel("app.kubernetes.io/component", component).list().getItems()
        .stream().map(p -> p.getMetadata().getName()).sorted().toList();
  }

  private static CheckpointStatus checkpointStatus(String namespace) {
    CheckpointStatus status = admin.resources(Checkpoint.class).inNamespace(namespace).withName("counter").get().getStatus();
    return status == null ? new CheckpointStatus() : status;
  }

  /** GET from a pod's port: the host reaches pods on the node's bridge. */
  private static String get(Pod pod, int port, String path) throws Exception {
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(
        URI.create("http://" + pod.getStatus().getPodIP() + ":" + port + path)).timeout(Duration.ofSeconds(10)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as("%s:%d%s", pod.getMetadata().getName(), port, path).isEqualTo(200);
    return response.body();
  }

  private static String osRelease(String key) throws Exception {
    return Files.readAllLines(Path.of("/etc/os-release")).stream().filter(l -> l.startsWith(key + "="))
        .map(l -> l.substring(key.length() + 1).replace("\"", "")).findFirst().orElseThrow();
  }

  private static long parent(long pid) throws Exception {
    return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream().filter(l -> l.startsWith("PPid:"))
        .map(l -> Long.parseLong(l.substring(5).trim())).findFirst().orElseThrow();
  }

  private static long count(Path file) {
    try {
      return Long.parseLong(Files.readString(file).trim());
    } catch (Exception e) {
      return -1;
    }
  }
}
