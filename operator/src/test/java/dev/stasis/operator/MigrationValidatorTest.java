package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.PodTarget;
import dev.stasis.api.RestorePlacement;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** What the operator refuses in a Migration before anything is stopped, without a server. */
class MigrationValidatorTest {
  final Map<String, NodeProfile> profiles = Map.of("node-a", profile("node-a"));
  final MigrationValidator.Observed observed = profiles::get;

  @Test
  void aProcessOnANodeWithAnAgentMayMove() throws Refusal {
    MigrationValidator.Source source = MigrationValidator.validate(migration(s -> {}), observed);
    assertThat(source.node()).isEqualTo("node-a");
    assertThat(source.profile()).isSameAs(profiles.get("node-a"));
  }

  @Test
  void refusals() {
    assertRefused(s -> s.target = null, "InvalidTarget", "set exactly one of spec.target.process");
    assertRefused(s -> s.target.pod = new PodTarget("sim-0", null), "InvalidTarget", "exactly one");
    assertRefused(s -> s.target = CheckpointTarget.pod("sim-0", null), "PodTargetNotSupported",
        "take a Checkpoint of it, delete the pod, and create a Restore");
    assertRefused(s -> s.target.process.pid = 1, "InvalidPid", "(2 or more), got 1");
    assertRefused(s -> s.target.process.node = "node-x", "NodeNotFound", "no Stasis agent runs on node 'node-x'");
    assertRefused(s -> s.placement.nodeName = "node-a", "SourceNodeNotAllowed",
        "or set spec.allowSourceNode to stop and restore it in place");
  }

  @Test
  void theSourceNodeMayBeNamedWhenAllowed() throws Refusal {
    assertThat(MigrationValidator.validate(migration(s -> {
      s.placement.nodeName = "node-a";
      s.allowSourceNode = true;
    }), observed).node()).isEqualTo("node-a");
  }

  private void assertRefused(Consumer<MigrationSpec> customize, String reason, String message) {
    assertThatThrownBy(() -> MigrationValidator.validate(migration(customize), observed))
        .isInstanceOfSatisfying(Refusal.class, r -> assertThat(r.reason()).isEqualTo(reason))
        .hasMessageContaining(message);
  }

  private static Migration migration(Consumer<MigrationSpec> customize) {
    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withName("move").withNamespace("jobs").build());
    m.setSpec(new MigrationSpec(CheckpointTarget.process("node-a", 4242)));
    m.getSpec().placement = new RestorePlacement();
    customize.accept(m.getSpec());
    return m;
  }

  private static NodeProfile profile(String name) {
    NodeProfile p = new NodeProfile();
    p.setMetadata(new ObjectMetaBuilder().withName(name).build());
    p.setSpec(new NodeProfileSpec());
    return p;
  }
}
