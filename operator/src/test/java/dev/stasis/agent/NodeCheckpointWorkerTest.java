package dev.stasis.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.criu.Criu;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent's own checks, before any CRIU runs, on the fabric8 CRUD mock server. */
@EnableKubernetesMockClient(crud = true)
class NodeCheckpointWorkerTest {
  KubernetesClient client;
  @TempDir Path work;

  /** Work handed over by something posing as the operator: the agent checks for itself. */
  @Test
  void refusesProcessTargetsInNamespacesNobodyAllowed() {
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("tenant").endMetadata().build())
        .create();
    Checkpoint forged = new Checkpoint();
    forged.setMetadata(new ObjectMetaBuilder().withName("forged").withNamespace("tenant")
        .withLabels(Map.of(Labels.NODE, "node-a")).build());
    forged.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", (int) ProcessHandle.current().pid())));
    forged = client.resource(forged).create();
    forged.setStatus(new CheckpointStatus());
    forged.getStatus().phase = CheckpointPhase.Pending;
    forged.getStatus().node = "node-a";
    forged.getStatus().storage = "any";
    forged = client.resource(forged).updateStatus();

    var config = new AgentConfig("node-a", work, new Criu(work.resolve("no-criu"), Map.of()));
    new NodeCheckpointWorker(client, config, new EventRecorder(client, "agent", "node-a"), new AgentShutdown())
        .reconcile(forged, null);

    Checkpoint result = client.resource(forged).get();
    assertThat(result.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(result.getStatus().reason).isEqualTo("ProcessTargetNotAllowed");
    assertThat(client.v1().events().inNamespace("tenant").list().getItems())
        .anyMatch(e -> e.getReason().equals("ProcessTargetNotAllowed") && e.getSource().getComponent().equals("agent"));
  }
}
