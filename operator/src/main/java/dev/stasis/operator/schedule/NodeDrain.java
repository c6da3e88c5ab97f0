package dev.stasis.operator.schedule;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Taint;
import java.util.Set;

/**
 * Whether a node is being drained: cordoned ({@code kubectl drain} starts so) or tainted NoExecute
 * by someone. The NoExecute taints the node lifecycle controller puts on a node it cannot reach or
 * that is not ready are no drain: that node is lost, not emptied, and failover.onNodeLost handles
 * it; a drain's checkpoint or Migration would only wait for an agent that is not there.
 */
public final class NodeDrain {
  /** The taints the node lifecycle controller sets on a node it lost touch with (taint-based evictions). */
  static final Set<String> NODE_LOST_TAINTS = Set.of("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready");

  private NodeDrain() {}

  public static boolean isDraining(Node node) {
    if (node == null || node.getSpec() == null) {
      return false;
    }
    return Boolean.TRUE.equals(node.getSpec().getUnschedulable())
        || (node.getSpec().getTaints() != null
            && node.getSpec().getTaints().stream().anyMatch(NodeDrain::isDrainTaint));
  }

  private static boolean isDrainTaint(Taint taint) {
    return "NoExecute".equals(taint.getEffect()) && !NODE_LOST_TAINTS.contains(taint.getKey());
  }
}
