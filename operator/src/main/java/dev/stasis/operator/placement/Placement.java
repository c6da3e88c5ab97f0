package dev.stasis.operator.placement;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * Picks the node a restore runs on: the source node when it can, otherwise a compatible node
 * with the source's CPU model, otherwise any compatible node; a requested node only if compatible.
 */
public final class Placement {
  private Placement() {}

  public static PlacementDecision place(
      String sourceNode, NodeProfileSpec source, List<NodeProfile> profiles, String requestedNode) {
    List<NodeProfile> compatible = new ArrayList<>();
    List<RejectedNode> rejected = new ArrayList<>();
    for (NodeProfile profile : profiles) {
      String name = profile.getMetadata().getName();
      if (requestedNode != null && !requestedNode.equals(name)) {
        continue;
      }
      List<String> reasons = profile.getSpec() == null
          ? List.of("no profile published yet")
          : NodeMatcher.incompatibilities(source, profile.getSpec());
      if (reasons.isEmpty()) {
        compatible.add(profile);
      } else {
        rejected.add(new RejectedNode(name, reasons));
      }
    }
    int considered = compatible.size() + rejected.size();
    if (requestedNode != null && considered == 0) {
      rejected.add(new RejectedNode(requestedNode, List.of("has no NodeProfile: no Stasis agent runs there")));
      considered = 1;
    }
    Optional<NodeProfile> best = compatible.stream().min(Comparator
        .comparing((NodeProfile p) -> !p.getMetadata().getName().equals(sourceNode))
        .thenComparing(p -> !sameCpuModel(source, p.getSpec()))
        .thenComparing(p -> p.getMetadata().getName()));
    if (best.isEmpty()) {
      return new PlacementDecision(Optional.empty(), "", considered, rejected);
    }
    String chosen = best.get().getMetadata().getName();
    String why = requestedNode != null ? "requested in spec.placement.nodeName"
        : chosen.equals(sourceNode) ? "the source node"
        : sameCpuModel(source, best.get().getSpec()) ? "compatible, same CPU model as the source"
        : "compatible with the source";
    return new PlacementDecision(Optional.of(chosen), why, considered, rejected);
  }

  private static boolean sameCpuModel(NodeProfileSpec a, NodeProfileSpec b) {
    return a.cpu != null && b.cpu != null && a.cpu.modelName != null && a.cpu.modelName.equals(b.cpu.modelName);
  }
}
