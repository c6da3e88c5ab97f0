package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.PodTarget;
import dev.stasis.testing.TestStorage;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** What the operator refuses in a Checkpoint before any agent sees it, without a server. */
class CheckpointValidatorTest {
  static final String NS = "jobs";

  /** Agents run on node-a and node-b; pod "web" runs on node-a with containers app and sidecar. */
  final Map<String, Pod> pods = Map.of("web", runningPod("web", "node-a"), "elsewhere", runningPod("elsewhere", "node-z"),
      "pending", new PodBuilder().withNewMetadata().withName("pending").withNamespace(NS).endMetadata()
          .withNewSpec().addNewContainer().withName("app").endContainer().endSpec()
          .withNewStatus().withPhase("Pending").endStatus().build());
  final CheckpointValidator.Observed observed = new CheckpointValidator.Observed() {
    @Override
    public boolean hasAgent(String node) {
      return Set.of("node-a", "node-b").contains(node);
    }

    @Override
    public Pod pod(String name) {
      return pods.get(name);
    }
  };

  @Test
  void aProcessTargetGoesToTheAgentOfItsNode() throws Refusal {
    var assignment = CheckpointValidator.validate(checkpoint(CheckpointTarget.process("node-b", 4242)), observed);
    assertThat(assignment.node()).isEqualTo("node-b");
    assertThat(assignment.containers()).isNull();
  }

  @Test
  void aPodTargetGoesToTheAgentOfTheNodeItRunsOnWithItsContainers() throws Refusal {
    var assignment = CheckpointValidator.validate(checkpoint(CheckpointTarget.pod("web", null)), observed);
    assertThat(assignment.node()).isEqualTo("node-a");
    assertThat(assignment.containers()).extracting(c -> c.name).containsExactly("app", "sidecar");
    assertThat(CheckpointValidator.validate(checkpoint(CheckpointTarget.pod("web", "sidecar")), observed).containers())
        .extracting(c -> c.name).containsExactly("sidecar");
  }

  @Test
  void exactlyOneTargetIsRequired() {
    CheckpointTarget both = CheckpointTarget.process("node-a", 4242);
    both.pod = new PodTarget("web", null);
    assertRefused(checkpoint(both), "InvalidTarget", "set exactly one of spec.target.process");
    assertRefused(checkpoint(new CheckpointTarget()), "InvalidTarget", "set exactly one of spec.target.process");
    Checkpoint noSpec = checkpoint(null);
    noSpec.setSpec(null);
    assertRefused(noSpec, "InvalidTarget", "set exactly one of spec.target.process");
  }

  @Test
  void aProcessTargetNeedsANodeWithAnAgentAndAWorkloadPid() {
    assertRefused(checkpoint(CheckpointTarget.process(" ", 4242)), "InvalidTarget", "spec.target.process.node is required");
    assertRefused(checkpoint(CheckpointTarget.process("node-a", 1)), "InvalidPid", "(2 or more), got 1");
    assertRefused(checkpoint(CheckpointTarget.process("node-c", 4242)), "NodeNotFound",
        "no Stasis agent runs on node 'node-c'");
  }

  @Test
  void aTtlMustBeADuration() {
    Checkpoint c = checkpoint(CheckpointTarget.process("node-a", 4242));
    c.getSpec().ttl = "a while";
    assertRefused(c, "InvalidTtl", "spec.ttl: ");
  }

  @Test
  void aPodTargetTakesNoneOfTheOptionsOnlyTheAgentsCriuHonours() {
    Checkpoint c = checkpoint(CheckpointTarget.pod("web", null));
    c.getSpec().options = new CheckpointOptions();
    c.getSpec().options.leaveRunning = false;
    c.getSpec().options.tcpEstablished = true;
    assertRefused(c, "OptionNotSupported", "leaveRunning: false, tcpEstablished cannot apply to a pod target: remove them");
  }

  @Test
  void aPodTargetMustBeARunningPodOfTheNamespaceOnANodeWithAnAgent() {
    assertRefused(checkpoint(CheckpointTarget.pod(" ", null)), "InvalidTarget", "spec.target.pod.name is required");
    assertRefused(checkpoint(CheckpointTarget.pod("gone", null)), "PodNotFound",
        "pod 'gone' does not exist in namespace jobs");
    assertRefused(checkpoint(CheckpointTarget.pod("pending", null)), "PodNotRunning", "only Running pods");
    assertRefused(checkpoint(CheckpointTarget.pod("web", "db")), "ContainerNotFound", "db");
    assertRefused(checkpoint(CheckpointTarget.pod("elsewhere", null)), "NodeNotFound",
        "runs on node 'node-z', where no Stasis agent runs");
  }

  @Test
  void aStorageIsUsableWhenTheNamespaceMayUseItAndItsLastCheckFoundItAvailable() throws Refusal {
    CheckpointStorage open = TestStorage.filesystem("open", Path.of("/srv")).build();
    assertThat(CheckpointValidator.requireUsable(open, NS)).isSameAs(open);

    CheckpointStorage teamB = TestStorage.filesystem("team-b", Path.of("/srv"))
        .with(spec -> spec.allowedNamespaces = List.of("team-b")).build();
    assertThatThrownBy(() -> CheckpointValidator.requireUsable(teamB, NS)).isInstanceOfSatisfying(Refusal.class,
        r -> assertThat(r.reason()).isEqualTo("StorageNotAllowed"));

    CheckpointStorage down = TestStorage.filesystem("down", Path.of("/srv")).build();
    down.setStatus(new CheckpointStorageStatus());
    down.getStatus().phase = CheckpointStorageStatus.UNAVAILABLE;
    down.getStatus().reason = "EncryptionKeyNotFound";
    down.getStatus().message = "no key k1";
    assertThatThrownBy(() -> CheckpointValidator.requireUsable(down, NS)).isInstanceOfSatisfying(Refusal.class, r -> {
      assertThat(r.reason()).as("the storage's own reason says what to fix").isEqualTo("EncryptionKeyNotFound");
      assertThat(r.getMessage()).isEqualTo("CheckpointStorage 'down' is unavailable: no key k1");
    });
  }

  private void assertRefused(Checkpoint checkpoint, String reason, String text) {
    assertThatThrownBy(() -> CheckpointValidator.validate(checkpoint, observed)).isInstanceOfSatisfying(Refusal.class,
        r -> {
          assertThat(r.reason()).isEqualTo(reason);
          assertThat(r.getMessage()).contains(text);
        });
  }

  private static Checkpoint checkpoint(CheckpointTarget target) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(target));
    return c;
  }

  private static Pod runningPod(String name, String node) {
    return new PodBuilder().withNewMetadata().withName(name).withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName(node).addNewContainer().withName("app").endContainer()
        .addNewContainer().withName("sidecar").endContainer().endSpec()
        .withNewStatus().withPhase("Running")
        .addNewContainerStatus().withName("app").withContainerID("containerd://a").withNewState().withNewRunning()
        .endRunning().endState().endContainerStatus()
        .addNewContainerStatus().withName("sidecar").withContainerID("containerd://s").withNewState().withNewRunning()
        .endRunning().endState().endContainerStatus()
        .endStatus().build();
  }
}
