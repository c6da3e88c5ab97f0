package dev.stasis.operator.schedule;

import io.fabric8.kubernetes.api.model.Node;

/** Whether a node is being drained: cordoned ({@code kubectl drain} starts so) or tainted NoExecute. */
public final class NodeDrain {
  private NodeDrain() {}

  public static boolean isDraining(Node node) {
    if (node == null || node.getSpec() == null) {
      return false;
    }
    return Boolean.TRUE.equals(node.getSpec().getUnschedulable())
        || (node.getSpec().getTaints() != null
            && node.getSpec().getTaints().stream().anyMatch(t -> "NoExecute".equals(t.getEffect())));
  }
}
