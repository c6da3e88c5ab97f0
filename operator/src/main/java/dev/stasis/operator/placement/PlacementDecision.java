package dev.stasis.operator.placement;

import java.util.List;
import java.util.Optional;

/** Where a restore goes, or why it can go nowhere, worded like the scheduler's messages. */
public record PlacementDecision(Optional<String> node, String why, int candidates, List<RejectedNode> rejected) {

  public String summary() {
    String rejections = rejected.isEmpty()
        ? ""
        : "; rejected: " + String.join("; ", rejected.stream().map(RejectedNode::toString).toList());
    if (node.isPresent()) {
      return node.get() + " (" + why + ")" + rejections;
    }
    int total = candidates;
    return "0/" + total + " nodes can run this checkpoint"
        + (rejected.isEmpty() ? "" : ": " + String.join("; ", rejected.stream().map(RejectedNode::toString).toList()));
  }
}
