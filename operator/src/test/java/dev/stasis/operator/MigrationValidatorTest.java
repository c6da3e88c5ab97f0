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
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** What the operator refuses in a Migration before anything is stopped, without a server. */
class MigrationValidatorTest {
  final Map<String, NodeProfile> profiles = Map.of("node-a", profile("node-a"));
  final Map<String, Pod> pods = Map.of("sim-0", runningPod("sim-0", null),
      "web-1", runningPod("web-1", new OwnerReferenceBuilder().withKind("ReplicaSet").withName("web").withController(true)
          .build()),
      "moved", runningPod("moved", new OwnerReferenceBuilder().withKind("Restore").withName("move").withController(true)
          .build()));
  final MigrationValidator.Observed observed = new MigrationValidator.Observed() {
    @Override
    public NodeProfile nodeProfile(String node) {
      return profiles.get(node);
    }

    @Override
    public Pod pod(String name) {
      return pods.get(name);
    }
  };

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
    assertRefused(s -> s.target = CheckpointTarget.pod("gone", null), "PodNotFound", "pod 'gone' does not exist");
    assertRefused(s -> s.target = CheckpointTarget.pod("web-1", null), "PodHasController",
        "pod 'web-1' belongs to ReplicaSet web, which would start a new copy of it when the Migration deletes it");
    assertRefused(s -> s.target.process.pid = 1, "InvalidPid", "(2 or more), got 1");
    assertRefused(s -> s.target.process.node = "node-x", "NodeNotFound", "no Stasis agent runs on node 'node-x'");
    assertRefused(s -> s.placement.nodeName = "node-a", "SourceNodeNotAllowed",
        "or set spec.allowSourceNode to stop and restore it in place");
  }

  @Test
  void aRunningPodOfNoControllerOrOfARestoreMayMove() throws Refusal {
    for (String pod : List.of("sim-0", "moved")) {
      MigrationValidator.Source source = MigrationValidator.validate(migration(s -> s.target = CheckpointTarget.pod(pod,
          null)), observed);
      assertThat(source.node()).isEqualTo("node-a");
      assertThat(source.pod()).isSameAs(pods.get(pod));
    }
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

  private static Pod runningPod(String name, OwnerReference controller) {
    return new PodBuilder().withNewMetadata().withName(name).withNamespace("jobs").withUid("uid-" + name)
        .withOwnerReferences(controller == null ? List.of() : List.of(controller)).endMetadata()
        .withNewSpec().withNodeName("node-a").addNewContainer().withName("app").endContainer().endSpec()
        .withNewStatus().withPhase("Running").addNewContainerStatus().withName("app").withContainerID("containerd://c1")
        .withNewState().withNewRunning().endRunning().endState().endContainerStatus().endStatus().build();
  }

  private static NodeProfile profile(String name) {
    NodeProfile p = new NodeProfile();
    p.setMetadata(new ObjectMetaBuilder().withName(name).build());
    p.setSpec(new NodeProfileSpec());
    return p;
  }
}
