package dev.stasis.operator.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Compatibility;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.RestorePlacement;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class PlacementTest {
  static final NodeProfileSpec SOURCE = profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f");
  static final CheckpointNeeds NEEDS = needs(SOURCE, List.of(), List.of());
  static final RestorePlacement ANY = new RestorePlacement();

  static NodeProfileSpec profile(String arch, String model, String criu, String... flags) {
    NodeProfileSpec p = new NodeProfileSpec();
    p.arch = arch;
    p.cpu = new NodeProfileSpec.CpuInfo();
    p.cpu.modelName = model;
    p.cpu.flags = List.of(flags);
    p.criu = new NodeProfileSpec.CriuInfo();
    p.criu.version = criu;
    p.criu.checkPassed = !criu.isEmpty();
    p.criu.features = List.of("mnt_id", "timens");
    p.kernelRelease = "6.18.0";
    p.os = new NodeProfileSpec.OsInfo();
    p.os.id = "debian";
    p.os.versionId = "12";
    p.runtime = new NodeProfileSpec.RuntimeInfo();
    p.runtime.name = "none";
    return p;
  }

  /** SOURCE with one change. */
  static NodeProfileSpec like(Consumer<NodeProfileSpec> change) {
    NodeProfileSpec p = profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f");
    change.accept(p);
    return p;
  }

  static NodeProfile node(String name, NodeProfileSpec spec, Map<String, String> labels) {
    NodeProfile n = new NodeProfile();
    n.setMetadata(new ObjectMetaBuilder().withName(name).withLabels(labels).build());
    n.setSpec(spec);
    return n;
  }

  static NodeProfile node(String name, NodeProfileSpec spec) {
    return node(name, spec, Map.of());
  }

  static CheckpointNeeds needs(NodeProfileSpec source, List<String> tcp, List<String> gpus) {
    return new CheckpointNeeds("src", source, source.criu.version, tcp, gpus, false);
  }

  /** A pod checkpoint taken on a containerd node. */
  static final CheckpointNeeds POD = new CheckpointNeeds("src", containerd(podSource(), true),
      "4.2.1", List.of(), List.of(), true);

  static NodeProfileSpec podSource() {
    return profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f");
  }

  /** {@code p} running containerd 2.3.4, restoring from checkpoint images or not (with the agent's words). */
  static NodeProfileSpec containerd(NodeProfileSpec p, boolean restores) {
    p.runtime.name = "containerd";
    p.runtime.version = "2.3.4";
    p.runtime.restore = restores
        ? new NodeProfileSpec.RuntimeRestore(true, NodeProfileSpec.RuntimeRestore.FROM_CONFIG,
            "containerd 2.3.4 restores from checkpoint images: enable_experimental_restore_via_create = true in /etc/containerd/config.toml", null)
        : new NodeProfileSpec.RuntimeRestore(false, NodeProfileSpec.RuntimeRestore.FROM_CONFIG,
            "containerd 2.3.4 restores from checkpoint images only with enable_experimental_restore_via_create = true,"
                + " and it is not set (default false) in /etc/containerd/config.toml",
            "set enable_experimental_restore_via_create = true in [plugins.\"io.containerd.cri.v1.runtime\"] of"
                + " /etc/containerd/config.toml and restart containerd");
    return p;
  }

  /** {@code p} running containerd that its kubelet cannot reach just now, as the agent publishes it. */
  static NodeProfileSpec unreachableContainerd(NodeProfileSpec p) {
    p.runtime.name = "containerd";
    p.runtime.restore = new NodeProfileSpec.RuntimeRestore(false, NodeProfileSpec.RuntimeRestore.UNREACHABLE,
        "the kubelet cannot reach containerd (it reports its version as Unknown): the runtime is down or restarting",
        "start containerd on the node");
    return p;
  }

  static RestorePlacement placement(Compatibility compatibility, Map<String, String> selector) {
    RestorePlacement p = new RestorePlacement();
    p.compatibility = compatibility;
    p.nodeSelector = selector;
    return p;
  }

  static final RestorePlacement STRICT = placement(Compatibility.Strict, null);

  static Stream<Arguments> matcherCases() {
    return Stream.of(
        Arguments.of("identical", NEEDS, ANY, node("b", SOURCE), List.of()),
        Arguments.of("more CPU flags is fine", NEEDS, ANY,
            node("b", profile("x86_64", "EPYC", "4.2.1", "sse4_2", "avx2", "avx512f", "sha_ni")), List.of()),
        Arguments.of("newer CRIU is fine", NEEDS, ANY, node("b", like(p -> p.criu.version = "4.10")), List.of()),
        Arguments.of("missing CPU flags", NEEDS, ANY, node("b", profile("x86_64", "EPYC", "4.2.1", "sse4_2")),
            List.of("missing CPU flags [avx2 avx512f]")),
        Arguments.of("older CRIU", NEEDS, ANY, node("b", like(p -> p.criu.version = "3.17.1")),
            List.of("CRIU 3.17.1 < 4.2.1")),
        Arguments.of("no CRIU", NEEDS, ANY, node("b", like(p -> p.criu.version = "")), List.of("no CRIU")),
        Arguments.of("criu check fails", NEEDS, ANY, node("b", like(p -> {
          p.criu.checkPassed = false;
          p.criu.checkMessage = "Does not look good.";
        })), List.of("criu check fails (Does not look good.)")),
        Arguments.of("other arch", NEEDS, ANY, node("b", profile("aarch64", "Neoverse", "4.2.1")),
            List.of("arch aarch64 != x86_64", "missing CPU flags [avx2 avx512f sse4_2]")),
        Arguments.of("other runtime family", NEEDS, ANY, node("b", like(p -> p.runtime.name = "containerd")),
            List.of("runtime containerd != none")),
        Arguments.of("unknown runtime is not held against a node", NEEDS, ANY, node("b", like(p -> p.runtime = null)),
            List.of()),
        Arguments.of("no profile published yet", NEEDS, ANY, node("b", null), List.of("no profile published yet")),
        Arguments.of("a pod checkpoint on a runtime that restores", POD, ANY,
            node("b", containerd(podSource(), true)), List.of()),
        Arguments.of("a pod checkpoint on a runtime with restores off: what it found and what to set", POD, ANY,
            node("b", containerd(podSource(), false)),
            List.of("runtime cannot restore: containerd 2.3.4 restores from checkpoint images only with"
                + " enable_experimental_restore_via_create = true, and it is not set (default false) in"
                + " /etc/containerd/config.toml; set enable_experimental_restore_via_create = true in"
                + " [plugins.\"io.containerd.cri.v1.runtime\"] of /etc/containerd/config.toml and restart containerd")),
        Arguments.of("a pod checkpoint on a node whose kubelet cannot reach its runtime just now", POD, ANY,
            node("b", unreachableContainerd(podSource())),
            List.of("runtime unreachable: the kubelet cannot reach containerd (it reports its version as Unknown): the"
                + " runtime is down or restarting; start containerd on the node")),
        Arguments.of("a pod checkpoint on a node whose agent says nothing of restores", POD, ANY,
            node("b", like(p -> p.runtime.name = "containerd")),
            List.of("the node's agent does not say whether its container runtime restores from checkpoint images"
                + " (it is older than the operator): upgrade it")),
        Arguments.of("a process checkpoint does not care whether the runtime restores", NEEDS, ANY,
            node("b", containerd(like(p -> p.runtime.name = "none"), false)), List.of("runtime containerd != none")),
        Arguments.of("a source without CPU flags asks for none", needs(like(p -> p.cpu = null), List.of(), List.of()), ANY,
            node("b", profile("x86_64", "Xeon", "4.2.1")), List.of()),
        Arguments.of("several reasons at once", NEEDS, ANY,
            node("b", like(p -> {
              p.arch = "aarch64";
              p.criu.version = "4.0";
              p.runtime.name = "cri-o";
            })),
            List.of("arch aarch64 != x86_64", "CRIU 4.0 < 4.2.1", "runtime cri-o != none")),
        Arguments.of("Compatible ignores CPU model, kernel and OS", NEEDS, ANY,
            node("b", like(p -> {
              p.cpu.modelName = "Xeon Gold";
              p.kernelRelease = "6.1.0";
              p.os.versionId = "13";
            })), List.of()),
        Arguments.of("Strict: identical", NEEDS, STRICT, node("b", SOURCE), List.of()),
        Arguments.of("Strict: other CPU model", NEEDS, STRICT, node("b", like(p -> p.cpu.modelName = "Xeon Gold")),
            List.of("CPU model Xeon Gold != Xeon (Strict)")),
        Arguments.of("Strict: other kernel", NEEDS, STRICT, node("b", like(p -> p.kernelRelease = "6.1.0")),
            List.of("kernel 6.1.0 != 6.18.0 (Strict)")),
        Arguments.of("Strict: other OS", NEEDS, STRICT, node("b", like(p -> p.os.versionId = "13")),
            List.of("OS debian 13 != debian 12 (Strict)")),
        Arguments.of("Strict: missing CRIU features", NEEDS, STRICT, node("b", like(p -> p.criu.features = List.of("mnt_id"))),
            List.of("missing CRIU features [timens] (Strict)")),
        Arguments.of("Compatible does not ask for CRIU features", NEEDS, ANY,
            node("b", like(p -> p.criu.features = List.of())), List.of()),
        Arguments.of("nodeSelector matches", NEEDS, placement(null, Map.of("zone", "b")),
            node("b", SOURCE, Map.of("zone", "b", "rack", "7")), List.of()),
        Arguments.of("nodeSelector does not match", NEEDS, placement(null, Map.of("zone", "b", "gpu", "none")),
            node("b", SOURCE, Map.of("zone", "b")), List.of("labels do not match nodeSelector {gpu=none, zone=b}")),
        Arguments.of("established TCP connections stay on their node", needs(SOURCE, List.of("127.0.0.1:1 -> 127.0.0.1:2"), List.of()),
            ANY, node("b", SOURCE), List.of("checkpoint holds established TCP connections, which survive only on node src")),
        Arguments.of("a loopback connection with both ends in the tree goes anywhere", needs(SOURCE,
            List.of("127.0.0.1:1 -> 127.0.0.1:2", "127.0.0.1:2 -> 127.0.0.1:1", "[0:0:0:0:0:0:0:1]:3 -> [0:0:0:0:0:0:0:1]:4",
                "[0:0:0:0:0:0:0:1]:4 -> [0:0:0:0:0:0:0:1]:3"), List.of()), ANY, node("b", SOURCE), List.of()),
        Arguments.of("both ends in the tree, but off the loopback: stays", needs(SOURCE,
            List.of("10.0.0.5:1 -> 10.0.0.5:2", "10.0.0.5:2 -> 10.0.0.5:1"), List.of()), ANY, node("b", SOURCE),
            List.of("checkpoint holds established TCP connections, which survive only on node src")),
        Arguments.of("established TCP connections on their own node", needs(SOURCE, List.of("127.0.0.1:1 -> 127.0.0.1:2"), List.of()),
            ANY, node("src", SOURCE), List.of()),
        Arguments.of("GPU checkpoints go nowhere", needs(SOURCE, List.of(), List.of("/dev/nvidia0")), ANY,
            node("src", like(p -> p.gpus = List.of("nvidia0"))),
            List.of("checkpoint used GPUs [/dev/nvidia0], which CRIU cannot restore")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("matcherCases")
  void matcher(String name, CheckpointNeeds needs, RestorePlacement placement, NodeProfile candidate, List<String> expected) {
    assertThat(NodeMatcher.incompatibilities(needs, placement, candidate)).isEqualTo(expected);
  }

  @Test
  void ranksTheSourceNodeFirstThenTheSameCpuModelThenTheMostFreeSpace() {
    NodeProfileSpec roomy = like(p -> {
      p.cpu.modelName = "EPYC";
      p.workDirFreeBytes = 900L;
    });
    NodeProfileSpec cramped = like(p -> {
      p.cpu.modelName = "EPYC";
      p.workDirFreeBytes = 100L;
    });
    NodeProfileSpec sameModel = like(p -> p.workDirFreeBytes = 10L);
    List<NodeProfile> all = List.of(node("cramped", cramped), node("roomy", roomy), node("same-model", sameModel), node("src", SOURCE));

    assertThat(new Placement(all).place(NEEDS, ANY, Map.of()).node()).contains("src");
    assertThat(new Placement(all.subList(0, 3)).place(NEEDS, ANY, Map.of()).node()).contains("same-model");
    PlacementDecision byFreeSpace = new Placement(all.subList(0, 2)).place(NEEDS, ANY, Map.of());
    assertThat(byFreeSpace.node()).contains("roomy");
    assertThat(byFreeSpace.summary()).isEqualTo("roomy (compatible, most free space)");
  }

  @Test
  void explainsEveryRejectionLikeTheScheduler() {
    var profiles = List.of(
        node("node-b", profile("x86_64", "EPYC", "4.2.1", "sse4_2")),
        node("node-c", profile("x86_64", "Xeon", "3.17", "sse4_2", "avx2", "avx512f")));
    PlacementDecision decision = new Placement(profiles).place(NEEDS, ANY, Map.of());
    assertThat(decision.node()).isEmpty();
    assertThat(decision.summary()).isEqualTo(
        "0/2 nodes can run this checkpoint: node-b missing CPU flags [avx2 avx512f]; node-c CRIU 3.17 < 4.2.1");
    assertThat(decision.rejected()).extracting(RejectedNode::node).containsExactly("node-b", "node-c");
  }

  /**
   * A node rejected only because its kubelet cannot reach its runtime just now may take the
   * checkpoint in a moment; one that also lacks something else, or whose runtime does not restore,
   * will not.
   */
  @Test
  void onlyANodeWhoseRuntimeIsUnreachableAndNothingElseMayTakeItSoon() {
    NodeProfile restarting = node("restarting", unreachableContainerd(podSource()));
    NodeProfile restartingAndOld = node("old", unreachableContainerd(like(p -> p.criu.version = "4.1")));
    NodeProfile off = node("off", containerd(podSource(), false));

    assertThat(new Placement(List.of(restarting, off)).place(POD, ANY, Map.of()).mayPlaceSoon()).isTrue();
    assertThat(new Placement(List.of(restartingAndOld, off)).place(POD, ANY, Map.of()).mayPlaceSoon()).isFalse();
    assertThat(new Placement(List.of(off)).place(POD, ANY, Map.of()).mayPlaceSoon()).isFalse();
    PlacementDecision placed = new Placement(List.of(restarting, node("ok", containerd(podSource(), true))))
        .place(POD, ANY, Map.of());
    assertThat(placed.node()).contains("ok");
    assertThat(placed.mayPlaceSoon()).as("placed already").isFalse();
  }

  @Test
  void groupsNodesRejectedForTheSameReasons() {
    List<NodeProfile> profiles = new ArrayList<>();
    IntStream.range(0, 5).forEach(i -> profiles.add(node("old-" + i, like(p -> p.criu.version = "4.1"))));
    profiles.add(node("small", profile("x86_64", "Atom", "4.2.1", "sse4_2")));
    profiles.add(node("ok", SOURCE));

    PlacementDecision decision = new Placement(profiles).place(NEEDS, ANY, Map.of());

    assertThat(decision.summary()).isEqualTo("ok (compatible, same CPU model as the source); rejected: "
        + "5 nodes (old-0, old-1, old-2, …) CRIU 4.1 < 4.2.1; small missing CPU flags [avx2 avx512f]");
    assertThat(decision.rejected()).hasSize(6);
  }

  @Test
  void aRequestedNodeIsTheOnlyCandidateAndMustBeCompatible() {
    var profiles = List.of(node("src", SOURCE), node("old", like(p -> p.criu.version = "3.17")), node("ok", SOURCE));
    RestorePlacement old = new RestorePlacement();
    old.nodeName = "old";
    assertThat(new Placement(profiles).place(NEEDS, old, Map.of()).summary())
        .isEqualTo("0/1 nodes can run this checkpoint: old CRIU 3.17 < 4.2.1");
    RestorePlacement ok = new RestorePlacement();
    ok.nodeName = "ok";
    assertThat(new Placement(profiles).place(NEEDS, ok, Map.of()).summary()).isEqualTo("ok (requested in spec.placement.nodeName)");
    RestorePlacement nowhere = new RestorePlacement();
    nowhere.nodeName = "nowhere";
    assertThat(new Placement(profiles).place(NEEDS, nowhere, Map.of()).summary())
        .contains("nowhere has no NodeProfile: no Stasis agent runs there");
  }

  @Test
  void aNodeWhosePreflightFailedIsNotChosenAgain() {
    var profiles = List.of(node("src", SOURCE), node("other", SOURCE));
    PlacementDecision decision = new Placement(profiles).place(NEEDS, ANY, Map.of("src", "pre-flight failed (PreflightPathMissing)"));
    assertThat(decision.node()).contains("other");
    assertThat(decision.summary()).endsWith("rejected: src pre-flight failed (PreflightPathMissing)");
    assertThat(new Placement(profiles).place(NEEDS, ANY, Map.of("src", "pre-flight failed (PreflightPathMissing)", "other", "pre-flight failed (PreflightCpuMismatch)"))
        .node()).isEmpty();
  }

  @Test
  void aCheckpointWithTcpConnectionsCannotLeaveItsGoneSourceNode() {
    CheckpointNeeds tcp = needs(SOURCE, List.of("127.0.0.1:1 -> 127.0.0.1:2"), List.of());
    PlacementDecision decision = new Placement(List.of(node("b", SOURCE), node("c", SOURCE))).place(tcp, ANY, Map.of());
    assertThat(decision.summary()).isEqualTo("0/2 nodes can run this checkpoint: 2 nodes (b, c) "
        + "checkpoint holds established TCP connections, which survive only on node src");
  }
}
