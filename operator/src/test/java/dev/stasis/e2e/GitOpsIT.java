package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.testing.ArgoCdHealth;
import dev.stasis.testing.Folders;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.Kstatus;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What GitOps tools see of Stasis on the real API server, with the operator and an agent running
 * real CRIU: Flux's view (kstatus, tools/kstatus) and Argo CD's (docs/argocd/health.lua in Lua 5.1)
 * of each kind through its life, which agree on the same object; and re-applying config/samples/
 * the ways Flux and Argo CD apply changes no spec.
 */
class GitOpsIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration POLL = Duration.ofMillis(500);
  private static Kstatus kstatus;
  private static Kubectl kubectl;

  @BeforeAll
  static void tools() throws Exception {
    kstatus = new Kstatus(TestControlPlane.kubeconfig());
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
  }

  /**
   * A Checkpoint waits for its storage, a Restore for the Checkpoint: InProgress and Progressing,
   * saying why; the storage is Failed and Degraded until its path is fixed; then all three are
   * Current and Healthy. A later change of a field that may change is observed, and Current again.
   */
  @Test
  void aCheckpointAndItsRestoreAreInProgressWhileTheyWaitAndCurrentOnceDone() throws Exception {
    String ns = cluster.namespace();
    String storage = "gitops-" + ns;
    Path notAFolder = cluster.dir().resolve(ns + "-file");
    Files.writeString(notAFolder, "a file where the storage's folder should be");
    TestStorage.filesystem(storage, notAFolder.resolve("archives")).create(cluster.client());
    cluster.afterTest(() -> cluster.client().resources(CheckpointStorage.class).withName(storage).delete());
    Seen down = awaitSeen("checkpointstorages.stasis.dev", null, storage, "Failed");
    assertThat(down.argo()).isEqualTo(new ArgoCdHealth.Health("Degraded", down.argo().message()));
    assertThat(down.argo().message()).startsWith("StorageUnavailable: ");
    assertThat(down.flux().message()).contains(notAFolder.toString());

    Path out = cluster.dir().resolve(ns + "-count.txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    String job = """
        apiVersion: stasis.dev/v1alpha1
        kind: Checkpoint
        metadata: {name: job}
        spec:
          target: {process: {node: %s, pid: %d}}
          storage: %s
          backoffLimit: 20
          retainArchive: %s
        """;
    apply(ns, job.formatted(cluster.node(), counter.pid(), storage, false) + """
        ---
        apiVersion: stasis.dev/v1alpha1
        kind: Restore
        metadata: {name: job}
        spec:
          checkpointRef: {name: job}
        """);
    Seen waiting = awaitSeen("checkpoints.stasis.dev", ns, "job", "InProgress");
    assertThat(waiting.argo().status()).isEqualTo("Progressing");
    assertThat(waiting.argo().message()).startsWith("StorageUnavailable: attempt ");
    assertThat(waiting.flux().message()).contains("failed (StorageUnavailable)", "retrying in");
    Seen restoreWaiting = awaitSeen("restores.stasis.dev", ns, "job", "InProgress");
    assertThat(restoreWaiting.argo())
        .isEqualTo(new ArgoCdHealth.Health("Progressing", "CheckpointInProgress: waiting for Checkpoint 'job' to complete"));

    Path folder = cluster.dir().resolve(ns + "-archives");
    cluster.client().resources(CheckpointStorage.class).withName(storage).edit(s -> {
      s.getSpec().filesystem.path = folder.toString();
      return s;
    });
    Seen available = awaitSeen("checkpointstorages.stasis.dev", null, storage, "Current");
    assertThat(available.argo().status()).isEqualTo("Healthy");
    Seen taken = awaitSeen("checkpoints.stasis.dev", ns, "job", "Current");
    assertThat(taken.argo().status()).isEqualTo("Healthy");
    assertThat(taken.argo().message()).startsWith("Completed: ");
    Seen restored = awaitSeen("restores.stasis.dev", ns, "job", "Current");
    assertThat(restored.argo().status()).isEqualTo("Healthy");
    assertThat(restored.argo().message()).startsWith("Restored: ");
    int pid = cluster.restore("job").getStatus().restoredPid;
    cluster.afterTest(() -> Workloads.kill(pid));
    kubectl.run("wait", "-n", ns, "--for=condition=Ready", "ckpt/job", "rst/job", "--timeout=10s").ok();
    kubectl.run("wait", "-n", ns, "--for=condition=Complete", "ckpt/job", "rst/job", "--timeout=10s").ok();

    // retainArchive may change on a finished checkpoint: a new generation, observed by the operator
    apply(ns, job.formatted(cluster.node(), counter.pid(), storage, true));
    await().atMost(TIMEOUT).until(() -> cluster.checkpoint("job").getMetadata().getGeneration() == 2
        && Long.valueOf(2).equals(cluster.checkpoint("job").getStatus().observedGeneration));
    assertThat(awaitSeen("checkpoints.stasis.dev", ns, "job", "Current").argo().status()).isEqualTo("Healthy");
    assertThat(cluster.checkpoint("job").getStatus().conditions)
        .allSatisfy(c -> assertThat(c.getObservedGeneration()).as(c.getType()).isEqualTo(2L));
  }

  /** Work that fails for good is Failed for Flux and Degraded for Argo CD, with the reason and what to fix. */
  @Test
  void failuresAreFailedAndDegradedWithTheirReason() throws Exception {
    String ns = cluster.namespace();
    apply(ns, """
        apiVersion: stasis.dev/v1alpha1
        kind: Checkpoint
        metadata: {name: gone}
        spec:
          target: {process: {node: %s, pid: %d}}
          storage: %s
        ---
        apiVersion: stasis.dev/v1alpha1
        kind: Restore
        metadata: {name: nothing}
        spec:
          checkpointRef: {name: no-such-checkpoint}
        """.formatted(cluster.node(), Workloads.unusedPid(), cluster.fsStorage()));
    Seen gone = awaitSeen("checkpoints.stasis.dev", ns, "gone", "Failed");
    assertThat(gone.argo().status()).isEqualTo("Degraded");
    assertThat(gone.argo().message()).startsWith("ProcessNotFound: ");
    assertThat(gone.flux().message()).isEqualTo(gone.argo().message().substring("ProcessNotFound: ".length()));
    Seen nothing = awaitSeen("restores.stasis.dev", ns, "nothing", "Failed");
    assertThat(nothing.argo().status()).isEqualTo("Degraded");
    assertThat(nothing.argo().message()).startsWith("CheckpointNotFound: Checkpoint 'no-such-checkpoint'");
    kubectl.run("wait", "-n", ns, "--for=condition=Failed", "ckpt/gone", "rst/nothing", "--timeout=10s").ok();
  }

  /** A schedule is Current while it runs and while it is suspended (Argo CD: Suspended), Failed when its spec cannot be used. */
  @Test
  void aScheduleIsCurrentWhileItRunsOrIsSuspendedAndFailedWhenItsSpecCannotBeUsed() throws Exception {
    String ns = cluster.namespace();
    var counter = cluster.track(Workloads.startInPidNamespace("counter",
        cluster.dir().resolve(ns + "-scheduled.txt").toString()));
    String schedule = """
        apiVersion: stasis.dev/v1alpha1
        kind: CheckpointSchedule
        metadata: {name: hourly}
        spec:
          schedule: "%s"
          suspend: %s
          checkpointTemplate:
            target: {process: {node: %s, pid: %d}}
            storage: %s
        """;
    apply(ns, schedule.formatted("@every 1h", false, cluster.node(), counter.pid(), cluster.fsStorage()));
    Seen running = awaitSeen("checkpointschedules.stasis.dev", ns, "hourly", "Current");
    assertThat(running.argo()).isEqualTo(new ArgoCdHealth.Health("Healthy", "Scheduled: checkpoints are taken on schedule"));

    apply(ns, schedule.formatted("@every 1h", true, cluster.node(), counter.pid(), cluster.fsStorage()));
    await().atMost(TIMEOUT).pollInterval(POLL).until(() -> ArgoCdHealth.of(json("checkpointschedules.stasis.dev", ns,
        "hourly")).status().equals("Suspended"));
    assertThat(awaitSeen("checkpointschedules.stasis.dev", ns, "hourly", "Current").argo().message())
        .isEqualTo("Suspended: suspended: no checkpoints are taken");

    apply(ns, schedule.formatted("@every 1 minute", false, cluster.node(), counter.pid(), cluster.fsStorage()));
    Seen invalid = awaitSeen("checkpointschedules.stasis.dev", ns, "hourly", "Failed");
    assertThat(invalid.argo().status()).isEqualTo("Degraded");
    assertThat(invalid.argo().message()).startsWith("InvalidSchedule: ");
  }

  /**
   * Re-applying config/samples/ as Argo CD does (client-side apply, and server-side apply with its
   * field manager) and as Flux does (server-side apply as kustomize-controller, forcing conflicts)
   * writes nothing once the operator has settled; the operator never owns a field of a spec, and no
   * spec's generation moves.
   */
  @Test
  void reapplyingTheSamplesTheWaysFluxAndArgoCdApplyChangesNothing() throws Exception {
    TestControlPlane.admin().namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata().build())
        .createOr(NonDeletingOperation::update);
    // the sample filesystem storage's path; the operator's check of it creates it
    Path samplePath = Path.of("/var/lib/stasis");
    boolean samplePathExisted = Files.exists(samplePath);
    try {
      kubectl.run("apply", "--field-manager=argocd-controller", "-f", "config/samples/").ok();
      await().atMost(TIMEOUT).pollInterval(POLL).until(() -> samples().values().stream()
          .allMatch(s -> s.observed() && !s.kstatus().equals("InProgress")));
      Map<String, Sample> settled = samples();
      assertThat(settled).containsKeys("Checkpoint/default/counter", "Restore/default/counter",
          "CheckpointSchedule/default/nightly", "CheckpointStorage/scratch", "CheckpointStorage/s3");
      assertThat(settled.values()).allSatisfy(s -> assertThat(s.generation()).as(s.key()).isEqualTo(1));

      for (int i = 0; i < 3; i++) {
        String output = kubectl.run("apply", "--field-manager=argocd-controller", "-f", "config/samples/").ok().output();
        // the sample Secret's stringData always reads "configured" to kubectl; Stasis' kinds are what matters here
        assertThat(output.lines().filter(l -> l.contains(".stasis.dev/"))).as("client-side apply, again")
            .hasSize(settled.size()).allMatch(l -> l.endsWith(" unchanged"));
        assertUnchanged(settled);
      }
      for (String manager : List.of("kustomize-controller", "argocd-controller")) {
        kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=" + manager, "-f",
            "config/samples/").ok();
        Map<String, Sample> owned = samples(); // the first apply by a manager records its ownership
        assertThat(owned.values()).allSatisfy(s -> assertThat(s.generation()).as(s.key()).isEqualTo(1));
        for (int i = 0; i < 3; i++) {
          kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=" + manager, "-f",
              "config/samples/").ok();
          assertUnchanged(owned);
        }
      }
      assertThat(samples().values()).allSatisfy(s -> assertThat(s.specManagers()).as("who owns %s's spec", s.key())
          .containsExactlyInAnyOrder("argocd-controller", "kustomize-controller"));
    } finally {
      kubectl.run("delete", "-f", "config/samples/", "--ignore-not-found", "--timeout=60s").ok();
      if (!samplePathExisted) {
        Folders.deleteRecursively(samplePath);
      }
    }
  }

  private static void assertUnchanged(Map<String, Sample> before) throws Exception {
    Map<String, Sample> now = samples();
    assertThat(now.keySet()).isEqualTo(before.keySet());
    now.forEach((key, sample) -> {
      assertThat(sample.resourceVersion()).as("%s written again", key).isEqualTo(before.get(key).resourceVersion());
      assertThat(sample.generation()).as(key).isEqualTo(1);
    });
  }

  /** What a tool saw of an object: Flux's view and Argo CD's, of one and the same read. */
  record Seen(Kstatus.Result flux, ArgoCdHealth.Health argo) {}

  /**
   * Waits until Flux (kstatus, reading the API server) sees {@code status}, then reads the object once
   * and has both tools judge that copy: kstatus must say the same, Argo CD what that status means to it.
   */
  private static Seen awaitSeen(String resource, String namespace, String name, String status) throws Exception {
    await().atMost(TIMEOUT).pollInterval(POLL).until(() -> kstatus.of(resource, namespace, name).status().equals(status));
    String json = json(resource, namespace, name);
    Seen seen = new Seen(kstatus.ofJson(json), ArgoCdHealth.of(json));
    assertThat(seen.flux().status()).as("kstatus of %s", json).isEqualTo(status);
    assertThat(seen.argo().status()).as("Argo CD of %s", json).isEqualTo(switch (status) {
      case "InProgress" -> "Progressing";
      case "Failed" -> "Degraded";
      default -> seen.argo().status().equals("Suspended") ? "Suspended" : "Healthy";
    });
    return seen;
  }

  private static String json(String resource, String namespace, String name) throws Exception {
    return namespace == null ? kubectl.run("get", resource, name, "-o", "json").ok().output()
        : kubectl.run("get", "-n", namespace, resource, name, "-o", "json").ok().output();
  }

  private static void apply(String namespace, String yaml) throws Exception {
    kubectl.runWithInput(yaml, "apply", "-n", namespace, "-f", "-").ok();
  }

  /** One applied sample object of stasis.dev, as the API server has it now. */
  record Sample(String key, String resourceVersion, long generation, boolean observed, String kstatus,
      Set<String> specManagers) {}

  private static Map<String, Sample> samples() throws Exception {
    JsonNode list = JSON.readTree(kubectl.run("get", "-f", "config/samples/", "-o", "json", "--show-managed-fields").ok().output());
    Map<String, Sample> samples = new TreeMap<>();
    for (JsonNode item : list.path("items")) {
      if (!item.path("apiVersion").asText().startsWith("stasis.dev/")) {
        continue;
      }
      JsonNode meta = item.path("metadata");
      String key = item.path("kind").asText() + "/" + (meta.has("namespace") ? meta.path("namespace").asText() + "/" : "")
          + meta.path("name").asText();
      long generation = meta.path("generation").asLong();
      Set<String> specManagers = StreamSupport.stream(meta.path("managedFields").spliterator(), false)
          .filter(m -> m.path("fieldsV1").has("f:spec")).map(m -> m.path("manager").asText())
          .collect(Collectors.toSet());
      samples.put(key, new Sample(key, meta.path("resourceVersion").asText(), generation,
          item.path("status").path("observedGeneration").asLong(-1) == generation,
          kstatus.ofJson(item.toString()).status(), specManagers));
    }
    return samples;
  }
}
