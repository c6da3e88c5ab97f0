package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.kube.StatusWriter;
import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The operator and the agent both write a Checkpoint's status. On the real API server, a writer
 * holding a stale copy is refused (409) instead of overwriting the other's fields.
 */
class StatusConflictIT {

  @Test
  void aStaleWriterCannotOverwriteTheAgentsProgress() throws Exception {
    KubernetesClient client = TestControlPlane.admin();
    Checkpoint created = create(client, TestControlPlane.newNamespace("conflict"));
    Checkpoint operatorsCopy = client.resource(created).get();

    new StatusWriter(client).update(client.resource(created).get(), c -> true, c -> {
      c.getStatus().phase = CheckpointPhase.Running;
      c.getStatus().message = "agent at work";
    }).orElseThrow();

    CheckpointStatus stale = new CheckpointStatus();
    stale.phase = CheckpointPhase.Pending;
    stale.node = "node-a";
    assertThatThrownBy(() -> new StatusWriter(client).replace(operatorsCopy, stale))
        .isInstanceOfSatisfying(KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(409));
    Checkpoint now = client.resource(created).get();
    assertThat(now.getStatus().phase).isEqualTo(CheckpointPhase.Running);
    assertThat(now.getStatus().message).isEqualTo("agent at work");
  }

  @Test
  void twoRacingWritersKeepEachOthersFields() throws Exception {
    KubernetesClient client = TestControlPlane.admin();
    Checkpoint created = create(client, TestControlPlane.newNamespace("race"));
    int rounds = 40;
    var operator = CompletableFuture.runAsync(() -> {
      for (int i = 1; i <= rounds; i++) {
        int round = i;
        new StatusWriter(client).update(client.resource(created).get(), c -> true, c -> c.getStatus().node = "node-" + round);
      }
    });
    var agent = CompletableFuture.runAsync(() -> {
      for (int i = 1; i <= rounds; i++) {
        int round = i;
        new StatusWriter(client).update(client.resource(created).get(), c -> true,
            c -> c.getStatus().message = "step " + round);
      }
    });
    CompletableFuture.allOf(operator, agent).join();
    Checkpoint now = client.resource(created).get();
    assertThat(now.getStatus().node).isEqualTo("node-" + rounds);
    assertThat(now.getStatus().message).isEqualTo("step " + rounds);
  }

  private static Checkpoint create(KubernetesClient client, String namespace) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 42)));
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    return client.resource(c).updateStatus();
  }
}
