package dev.stasis.operator.placement;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Where a restore goes, or why it can go nowhere, worded like the scheduler's messages. */
public record PlacementDecision(Optional<String> node, String why, int candidates, List<RejectedNode> rejected) {
  /** Names listed for a group of nodes rejected for the same reasons; the rest are counted. */
  private static final int NAMES_PER_GROUP = 3;

  /**
   * "node-a (the source node); rejected: node-b missing CPU flags [avx2]" or "0/3 nodes can run
   * this checkpoint: node-b missing CPU flags [avx2]; 2 nodes (node-c, node-d) CRIU 3.17 < 4.1".
   * Nodes rejected for the same reasons share one entry, so the line stays short on big clusters.
   */
  public String summary() {
    String rejections = String.join("; ", groupedRejections());
    if (node.isPresent()) {
      return node.get() + " (" + why + ")" + (rejected.isEmpty() ? "" : "; rejected: " + rejections);
    }
    return "0/" + candidates + " nodes can run this checkpoint" + (rejected.isEmpty() ? "" : ": " + rejections);
  }

  private List<String> groupedRejections() {
    Map<List<String>, List<String>> nodesByReasons = new LinkedHashMap<>();
    for (RejectedNode r : rejected) {
      nodesByReasons.computeIfAbsent(r.reasons(), k -> new ArrayList<>()).add(r.node());
    }
    List<String> groups = new ArrayList<>();
    nodesByReasons.forEach((reasons, nodes) -> {
      if (nodes.size() == 1) {
        groups.add(nodes.get(0) + " " + String.join(", ", reasons));
      } else {
        String names = String.join(", ", nodes.subList(0, Math.min(NAMES_PER_GROUP, nodes.size())))
            + (nodes.size() > NAMES_PER_GROUP ? ", …" : "");
        groups.add(nodes.size() + " nodes (" + names + ") " + String.join(", ", reasons));
      }
    });
    return groups;
  }
}
