package dev.stasis.operator.placement;

import java.util.List;

/** A node that cannot run a checkpoint, and every reason why. */
public record RejectedNode(String node, List<String> reasons) {
  @Override
  public String toString() {
    return node + " " + String.join(", ", reasons);
  }
}
