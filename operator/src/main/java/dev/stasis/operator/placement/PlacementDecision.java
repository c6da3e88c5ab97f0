package dev.stasis.operator.placement;

import dev.stasis.api.PlacementStatus;
import dev.stasis.api.ReasonCount;
import dev.stasis.api.StatusLimits;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** Where a restore goes, or why it can go nowhere, worded like the scheduler's messages. */
public record PlacementDecision(Optional<String> node, String why, int candidates, List<RejectedNode> rejected) {
  /** Names listed for a group of nodes rejected for the same reasons; the rest are counted. */
  private static final int NAMES_PER_GROUP = 3;
  /** Groups of nodes rejected alike in the summary line; the other groups are counted. */
  private static final int GROUPS_IN_SUMMARY = 10;

  /**
   * "node-a (the source node); rejected: node-b missing CPU flags [avx2]" or "0/3 nodes can run
   * this checkpoint: node-b missing CPU flags [avx2]; 2 nodes (node-c, node-d) CRIU 3.17 < 4.1".
   * Nodes rejected for the same reasons share one entry, and only the first
   * {@value #GROUPS_IN_SUMMARY} entries are written out, so the line stays short on big clusters.
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
    int otherNodes = 0;
    for (var group : nodesByReasons.entrySet()) {
      List<String> reasons = group.getKey();
      List<String> nodes = group.getValue();
      if (groups.size() == GROUPS_IN_SUMMARY) {
        otherNodes += nodes.size();
      } else if (nodes.size() == 1) {
        groups.add(nodes.get(0) + " " + String.join(", ", reasons));
      } else {
        String names = String.join(", ", nodes.subList(0, Math.min(NAMES_PER_GROUP, nodes.size())))
            + (nodes.size() > NAMES_PER_GROUP ? ", …" : "");
        groups.add(nodes.size() + " nodes (" + names + ") " + String.join(", ", reasons));
      }
    }
    if (otherNodes > 0) {
      groups.add("and " + otherNodes + " more node" + (otherNodes == 1 ? "" : "s") + " for "
          + (nodesByReasons.size() - GROUPS_IN_SUMMARY) + " other combinations of reasons (status.placement.rejectedReasons)");
    }
    return groups;
  }

  /**
   * No node now, but one was rejected only for what passes by itself ({@link
   * NodeMatcher#passesByItself}): a placement a little later may find it.
   */
  public boolean mayPlaceSoon() {
    return node.isEmpty() && rejected.stream().anyMatch(r -> r.reasons().stream().allMatch(NodeMatcher::passesByItself));
  }

  /** How many nodes each reason rejected, most first: the {@code max} most frequent reasons. */
  public List<ReasonCount> reasonCounts(int max) {
    Map<String, Integer> counts = new LinkedHashMap<>();
    rejected.forEach(r -> r.reasons().forEach(reason -> counts.merge(reason, 1, Integer::sum)));
    return counts.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(max)
        .map(e -> new ReasonCount(e.getKey(), e.getValue())).toList();
  }

  /**
   * The decision as a status records it: the summary, and the rejected nodes with their reasons
   * (the first {@value StatusLimits#MAX_LISTED}, counted all, the most frequent reasons counted).
   */
  public PlacementStatus status() {
    PlacementStatus placement = new PlacementStatus();
    placement.summary = summary();
    placement.candidates = candidates;
    rejected.stream().limit(StatusLimits.MAX_LISTED)
        .forEach(r -> placement.rejected.add(new PlacementStatus.NodeRejection(r.node(), r.reasons())));
    placement.rejectedCount = rejected.size();
    placement.rejectedReasons = reasonCounts(StatusLimits.MAX_REASONS);
    return placement;
  }
}
