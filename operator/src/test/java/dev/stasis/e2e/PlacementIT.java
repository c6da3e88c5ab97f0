package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreSpec;
import dev.stasis.archive.Manifest;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.testing.CpuinfoImages;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Placement and the pre-flight on real parts. Two more agents run on this machine under their own
 * node names: ONE as the machine is, TWO posing (with --profile-overrides, the test aid) as a node
 * whose CPU lacks two flags ONE has. Both run this machine's real CRIU, so a restore placed on a
 * node really is done by that node's agent.
 */
class PlacementIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  static String ONE;
  static String TWO;
  /** Both test nodes carry it; restores select them by it, never nodes of other test classes. */
  static Map<String, String> BOTH;
  static List<String> removedFlags;
  static InProcessStasis agents;
  static Kubectl kubectl;

  @BeforeAll
  static void startTwoMoreAgents() throws Exception {
    ONE = cluster.node() + "-one";
    TWO = cluster.node() + "-two";
    BOTH = Map.of("stasis.dev/test-run", cluster.node());
    List<String> flags = new ArrayList<>(cluster.client().resources(NodeProfile.class).withName(cluster.node()).get().getSpec().cpu.flags);
    removedFlags = flags.stream().filter(f -> f.equals("avx2") || f.equals("sse4_2")).sorted().toList();
    assertThat(removedFlags).as("this machine's CPU flags").hasSize(2);
    flags.removeAll(removedFlags);
    Path overrides = Files.writeString(cluster.dir().resolve("two-overrides.json"),
        "{\"cpu\": {\"flags\": [\"" + String.join("\", \"", flags) + "\"]}}");
    Criu criu = new Criu(Main.criuPath(null), Map.of());
    agents = InProcessStasis.on(cluster.client()).withoutOperator()
        .agent(new AgentConfig(ONE, cluster.dir().resolve("work-one"), criu, Set.of(ProcessTargetPolicy.ALL),
            KubeletSettings.defaults(ONE), Path.of("/"), with(BOTH, "zone", "one"), null))
        .agent(new AgentConfig(TWO, cluster.dir().resolve("work-two"), criu, Set.of(ProcessTargetPolicy.ALL),
            KubeletSettings.defaults(TWO), Path.of("/"), with(BOTH, "zone", "two"), overrides))
        .start();
    await().atMost(TIMEOUT).until(() -> profile(ONE) != null && profile(TWO) != null);
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
  }

  @AfterAll
  static void stopAgents() {
    if (agents != null) agents.close();
  }

  @Test
  void nodeProfilesShowWhatEachNodeOffers() throws Exception {
    NodeProfile one = profile(ONE);
    assertThat(one.getSpec().criu.features).contains("mnt_id", "network_lock_nftables");
    assertThat(one.getSpec().criu.missingFeatures).contains("mem_dirty_track");
    assertThat(one.getMetadata().getLabels()).containsEntry("zone", "one");
    NodeProfile two = profile(TWO);
    assertThat(two.getSpec().cpu.flags).doesNotContainAnyElementsOf(removedFlags);
    assertThat(two.getMetadata().getAnnotations().get("stasis.dev/profile-overrides")).startsWith("cpu.flags set by ");

    String table = kubectl.run("get", "nodeprof", ONE, TWO).ok().output();
    assertThat(table.lines().findFirst().orElseThrow()).contains("ARCH", "CPU", "CRIU", "KERNEL", "RUNTIME");
    assertThat(table).contains(ONE).contains("x86_64").contains(one.getSpec().criu.version).contains("none");
  }

  @Test
  void aNodeWithoutTheSourcesCpuFlagsOrWithAnOldCriuIsRejectedWithItsReasons() throws Exception {
    checkpointACounter("flags", ONE, null);

    Restore onTwo = cluster.awaitRestore(createRestore("on-two", "flags", p -> p.nodeSelector = with(BOTH, "zone", "two")),
        RestorePhase.Failed);
    assertThat(onTwo.getStatus().reason).isEqualTo("NoCompatibleNode");
    assertThat(onTwo.getStatus().message).contains(TWO + " missing CPU flags [" + String.join(" ", removedFlags) + "]");
    assertThat(onTwo.getStatus().placement.rejected).anySatisfy(r -> {
      assertThat(r.node).isEqualTo(TWO);
      assertThat(r.reasons).containsExactly("missing CPU flags [" + String.join(" ", removedFlags) + "]");
    });

    Restore onOld = cluster.awaitRestore(createRestore("on-old", "flags", p -> p.nodeName = cluster.oldCriuNode()), RestorePhase.Failed);
    assertThat(onOld.getStatus().message).isEqualTo("0/1 nodes can run this checkpoint: " + cluster.oldCriuNode() + " CRIU 3.17.1 < "
        + profile(ONE).getSpec().criu.version);
    Restore onNone = cluster.awaitRestore(createRestore("on-none", "flags", p -> p.nodeName = cluster.noCriuNode()), RestorePhase.Failed);
    assertThat(onNone.getStatus().message).startsWith("0/1 nodes can run this checkpoint: " + cluster.noCriuNode() + " no CRIU");

    String described = kubectl.run("describe", "rst", "on-old", "-n", cluster.namespace()).ok().output();
    assertThat(described).contains("Placement:", "Summary:", "CRIU 3.17.1 <", "Events:", "NoCompatibleNode");
  }

  @Test
  void aCheckpointIsRestoredByTheAgentOfAnotherCompatibleNode() throws Exception {
    Path out = cluster.dir().resolve("cross-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    cluster.awaitCheckpoint(cluster.createCheckpoint("cross", TWO, counter.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    counter.close();
    long killedAt = Workloads.count(out);

    Restore restored = cluster.awaitRestore(createRestore("cross", "cross", p -> p.nodeSelector = with(BOTH, "zone", "one")),
        RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));

    assertThat(restored.getStatus().node).isEqualTo(ONE);
    assertThat(restored.getStatus().placement.summary).startsWith(ONE + " (compatible, same CPU model as the source)");
    assertThat(restored.getStatus().placement.rejected).anySatisfy(r -> assertThat(r.node).isEqualTo(TWO));
    assertThat(events("cross")).anySatisfy(e -> {
      assertThat(e.getReason()).isEqualTo("Restored");
      assertThat(e.getReportingInstance()).as("restored by the agent of node ONE").isEqualTo(ONE);
    });
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > killedAt + 3);
  }

  @Test
  void thePreflightNamesTheFileWhoseFolderWasRenamedAndRetriesOtherNodesOnlyWhenAsked() throws Exception {
    Path folder = Files.createDirectories(cluster.dir().resolve("run42-" + cluster.namespace()));
    Path log = folder.resolve("log.lammps");
    var writer = cluster.track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 3);
    cluster.awaitCheckpoint(cluster.createCheckpoint("run42", TWO, writer.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    writer.close();
    Path moved = Files.move(folder, cluster.dir().resolve("run42-" + cluster.namespace() + ".moved"));

    Restore failed = cluster.awaitRestore(createRestore("renamed", "run42", p -> p.nodeSelector = BOTH), RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("PreflightPathMissing");
    assertThat(failed.getStatus().message).startsWith("pre-flight on node " + TWO + " failed, no restore was attempted: ")
        .contains("missing " + log);
    assertThat(failed.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(failed.getStatus().placement.preflightFailures).extracting(f -> f.node).containsExactly(TWO);
    assertThat(events("renamed")).anyMatch(e -> e.getReason().equals("PreflightPathMissing") && e.getType().equals("Warning"));

    Restore retried = cluster.awaitRestore(createRestore("retried", "run42", p -> {
      p.nodeSelector = BOTH;
      p.retryOtherNodes = true;
    }), RestorePhase.Failed);
    assertThat(retried.getStatus().reason).isEqualTo("PreflightPathMissing");
    assertThat(retried.getStatus().placement.preflightFailures).extracting(f -> f.node).containsExactly(TWO, ONE);
    assertThat(retried.getStatus().message).contains("pre-flight on node " + ONE + " failed").contains("missing " + log);
    assertThat(events("retried")).anyMatch(e -> e.getReason().equals("RetryingOnAnotherNode")
        && e.getMessage().startsWith("pre-flight failed on node " + TWO + " (PreflightPathMissing); trying node " + ONE + " next"));

    Files.move(moved, folder);
    long before = Workloads.lines(log);
    Restore restored = cluster.awaitRestore(createRestore("moved-back", "run42", p -> p.nodeSelector = BOTH), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().node).isEqualTo(TWO);
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) > before + 3);
  }

  /**
   * A loopback connection with both ends in the tree (as an MPI launcher and its ranks hold) is
   * restored whole, loopback addresses and all, on another node too; a connection to anything
   * outside the tree keeps a checkpoint on its node (PlacementTest).
   */
  @Test
  void aTreesOwnLoopbackConnectionIsRestoredOnAnotherNode() throws Exception {
    Path out = cluster.dir().resolve("tcp-" + cluster.namespace() + ".txt");
    var pair = cluster.track(Workloads.startInPidNamespace("tcppair", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    var options = new CheckpointOptions();
    options.tcpEstablished = true;
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("tcp", ONE, pair.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    assertThat(cluster.manifestOf(done).tcpConnections).hasSize(2).allMatch(c -> c.startsWith("127.0.0.1:"));
    pair.close();
    Files.writeString(out, "0\n"); // from here on, only a restored pair writes it

    Restore elsewhere = cluster.awaitRestore(createRestore("tcp-elsewhere", "tcp", p -> p.nodeName = cluster.node()),
        RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(elsewhere.getStatus().restoredPid));
    assertThat(elsewhere.getStatus().node).isEqualTo(cluster.node());
    // The pair counts only while its one connection lives, on from the count it had at the checkpoint.
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > 3);
    long resumed = Workloads.count(out);
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > resumed + 5);
  }

  @Test
  void aCpuTheNodeDoesNotHaveFailsThePreflightWithCriusReason() throws Exception {
    Checkpoint done = checkpointACounter("cpu", ONE, null);
    Manifest manifest = cluster.manifestOf(done);
    byte[] doctored = CpuinfoImages.withCapabilities(Base64.getDecoder().decode(manifest.cpuinfo), CpuinfoImages.NO_CPU_HAS_ALL);
    manifest.cpuinfo = Base64.getEncoder().encodeToString(doctored);
    Files.write(cluster.manifestPath(done), manifest.toJson());
    cluster.recordManifest(done, null, manifest.toJson()); // as if taken on a CPU no node has

    Restore r = cluster.awaitRestore(createRestore("cpu", "cpu", p -> p.nodeSelector = with(BOTH, "zone", "one")), RestorePhase.Failed);
    assertThat(r.getStatus().reason).isEqualTo("PreflightCpuMismatch");
    assertThat(r.getStatus().message).startsWith("pre-flight on node " + ONE + " failed, no restore was attempted: ")
        .contains("this CPU cannot run what the source CPU (")
        .contains("criu cpuinfo check: cpu: CPU instruction capabilities do not match run time");
    assertThat(r.getStatus().criuLogTail).isNull();
  }

  // --- helpers ---

  Checkpoint checkpointACounter(String name, String node, CheckpointOptions options) throws Exception {
    Path out = cluster.dir().resolve(name + "-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint(name, node, counter.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    counter.close();
    return done;
  }

  Restore createRestore(String name, String checkpoint, Consumer<RestorePlacement> placement) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    r.getSpec().placement = new RestorePlacement();
    placement.accept(r.getSpec().placement);
    return cluster.client().resource(r).create();
  }

  List<Event> events(String restore) {
    return cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .filter(e -> restore.equals(e.getInvolvedObject().getName()) && "Restore".equals(e.getInvolvedObject().getKind()))
        .toList();
  }

  static NodeProfile profile(String node) {
    return cluster.client().resources(NodeProfile.class).withName(node).get();
  }

  static Map<String, String> with(Map<String, String> labels, String key, String value) {
    Map<String, String> result = new HashMap<>(labels);
    result.put(key, value);
    return result;
  }
}
