package dev.stasis.testing;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.RestoreStatus;
import dev.stasis.kube.Labels;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;

/**
 * Checkpoints and Restores as the operator hands them to the agent of a node (labelled for it,
 * {@code status.node} set), in the phase a test needs: for the agent's tests on the fabric8 mock.
 */
public final class AssignedWork {
  private AssignedWork() {}

  /** A checkpoint of this test's own process, assigned to {@code node}; Running counts one attempt. */
  public static Checkpoint checkpoint(KubernetesClient client, String node, String namespace, String name,
      Integer backoffLimit, CheckpointPhase phase) {
    namespace(client, namespace);
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace)
        .withLabels(Map.of(Labels.NODE, node)).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) ProcessHandle.current().pid())));
    c.getSpec().backoffLimit = backoffLimit;
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().node = node;
    c.getStatus().storage = "any";
    if (phase == CheckpointPhase.Running) {
      c.getStatus().attempts = 1;
    }
    return client.resource(c).updateStatus();
  }

  /** A Restore of {@code checkpoint} placed on {@code node}; Restoring counts one attempt. */
  public static Restore restore(KubernetesClient client, String node, String namespace, String name,
      String checkpoint, RestorePhase phase) {
    namespace(client, namespace);
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace)
        .withLabels(Map.of(Labels.NODE, node)).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    restore = client.resource(restore).create();
    restore.setStatus(new RestoreStatus());
    restore.getStatus().phase = phase;
    restore.getStatus().node = node;
    restore.getStatus().checkpoint = checkpoint;
    if (phase == RestorePhase.Restoring) {
      restore.getStatus().attempts = 1;
    }
    return client.resource(restore).updateStatus();
  }

  private static void namespace(KubernetesClient client, String namespace) {
    if (client.namespaces().withName(namespace).get() == null) {
      client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(namespace).endMetadata().build())
          .create();
    }
  }
}
