package dev.stasis.operator.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

class PlacementTest {
  static NodeProfileSpec profile(String arch, String model, String criu, String... flags) {
    NodeProfileSpec p = new NodeProfileSpec();
    p.arch = arch;
    p.cpu = new NodeProfileSpec.CpuInfo();
    p.cpu.modelName = model;
    p.cpu.flags = List.of(flags);
    p.criu = new NodeProfileSpec.CriuInfo();
    p.criu.version = criu;
    return p;
  }

  static NodeProfile node(String name, NodeProfileSpec spec) {
    NodeProfile n = new NodeProfile();
    n.setMetadata(new ObjectMetaBuilder().withName(name).build());
    n.setSpec(spec);
    return n;
  }

  static final NodeProfileSpec SOURCE = profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f");

  static Stream<Arguments> matcherCases() {
    return Stream.of(
        Arguments.of("identical", profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f"), List.of()),
        Arguments.of("more flags is fine", profile("x86_64", "EPYC", "4.2.1", "sse4_2", "avx2", "avx512f", "sha_ni"), List.of()),
        Arguments.of("newer CRIU is fine", profile("x86_64", "Xeon", "4.10", "sse4_2", "avx2", "avx512f"), List.of()),
        Arguments.of("missing flags", profile("x86_64", "EPYC", "4.2.1", "sse4_2"), List.of("missing CPU flags [avx2 avx512f]")),
        Arguments.of("older CRIU", profile("x86_64", "Xeon", "3.17.1", "sse4_2", "avx2", "avx512f"), List.of("CRIU 3.17.1 < 4.2.1")),
        Arguments.of("no CRIU", profile("x86_64", "Xeon", "", "sse4_2", "avx2", "avx512f"), List.of("no CRIU")),
        Arguments.of("other arch", profile("aarch64", "Neoverse", "4.2.1"), List.of("arch aarch64 != x86_64",
            "missing CPU flags [avx2 avx512f sse4_2]")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("matcherCases")
  void matcher(String name, NodeProfileSpec candidate, List<String> expected) {
    assertThat(NodeMatcher.incompatibilities(SOURCE, candidate)).isEqualTo(expected);
  }

  @Test
  void prefersTheSourceNodeThenTheSameCpuModel() {
    var profiles = List.of(
        node("a", profile("x86_64", "EPYC", "4.2.1", "sse4_2", "avx2", "avx512f")),
        node("b", profile("x86_64", "Xeon", "4.2.1", "sse4_2", "avx2", "avx512f")),
        node("src", SOURCE));
    assertThat(Placement.place("src", SOURCE, profiles, null).node()).contains("src");
    assertThat(Placement.place("gone", SOURCE, profiles, null).node()).contains("b");
  }

  @Test
  void explainsEveryRejectionLikeTheScheduler() {
    var profiles = List.of(
        node("node-b", profile("x86_64", "EPYC", "4.2.1", "sse4_2")),
        node("node-c", profile("x86_64", "Xeon", "3.17", "sse4_2", "avx2", "avx512f")));
    PlacementDecision decision = Placement.place("node-a", SOURCE, profiles, null);
    assertThat(decision.node()).isEmpty();
    assertThat(decision.summary()).isEqualTo(
        "0/2 nodes can run this checkpoint: node-b missing CPU flags [avx2 avx512f]; node-c CRIU 3.17 < 4.2.1");
  }

  @Test
  void aRequestedNodeMustBeCompatible() {
    var profiles = List.of(node("src", SOURCE), node("old", profile("x86_64", "Xeon", "3.17", "sse4_2", "avx2", "avx512f")));
    assertThat(Placement.place("src", SOURCE, profiles, "old").node()).isEmpty();
    assertThat(Placement.place("src", SOURCE, profiles, "old").summary()).contains("old CRIU 3.17 < 4.2.1");
    assertThat(Placement.place("src", SOURCE, profiles, "nowhere").summary())
        .contains("nowhere has no NodeProfile: no Stasis agent runs there");
  }
}
