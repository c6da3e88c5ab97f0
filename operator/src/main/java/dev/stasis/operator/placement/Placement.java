package dev.stasis.operator.placement;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.RestorePlacement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Picks the node a restore runs on, like the scheduler: filter, then rank. Every NodeProfile is a
 * candidate; {@link NodeMatcher} filters out those that cannot run the checkpoint (or that
 * {@code spec.placement} excludes) and says why; of the rest, the source node comes first, then
 * nodes with the source's CPU model, then the most free space. A node named in
 * {@code spec.placement.nodeName} is the only candidate.
 *
 * <p>Built over the cluster's profiles, it places any number of checkpoints.
 */
public final class Placement {
  private final FlagVocabulary vocabulary;
  private final List<Candidate> candidates;

  /** Over these profiles alone; {@link NodeProfileIndex#placementOver} reuses work across calls. */
  public Placement(List<NodeProfile> profiles) {
    this.vocabulary = new FlagVocabulary();
    this.candidates = profiles.stream().map(p -> new Candidate(p, vocabulary)).toList();
  }

  Placement(List<Candidate> candidates, FlagVocabulary vocabulary) {
    this.vocabulary = vocabulary;
    this.candidates = candidates;
  }

  /**
   * @param excludedNodes node → why, for nodes ruled out whatever they offer (their pre-flight
   *     failed for this restore, their agent is gone)
   */
  public PlacementDecision place(CheckpointNeeds needs, RestorePlacement placement, Map<String, String> excludedNodes) {
    RestorePlacement spec = placement != null ? placement : new RestorePlacement();
    NodeMatcher matcher = new NodeMatcher(needs, spec, excludedNodes, vocabulary);
    List<Candidate> compatible = new ArrayList<>();
    List<RejectedNode> rejected = new ArrayList<>();
    for (Candidate candidate : candidates) {
      if (spec.nodeName != null && !spec.nodeName.equals(candidate.name)) {
        continue;
      }
      List<String> reasons = matcher.incompatibilities(candidate);
      if (reasons.isEmpty()) {
        compatible.add(candidate);
      } else {
        rejected.add(new RejectedNode(candidate.name, reasons));
      }
    }
    int considered = compatible.size() + rejected.size();
    if (spec.nodeName != null && considered == 0) {
      rejected.add(new RejectedNode(spec.nodeName, List.of("has no NodeProfile: no Stasis agent runs there")));
      considered = 1;
    }
    Optional<Candidate> best = compatible.stream().min(Comparator
        .comparing((Candidate c) -> !matcher.isSource(c))
        .thenComparing(c -> !matcher.hasSourceCpuModel(c))
        .thenComparing(c -> -c.freeBytes)
        .thenComparing(c -> c.name));
    if (best.isEmpty()) {
      return new PlacementDecision(Optional.empty(), "", considered, rejected);
    }
    Candidate chosen = best.get();
    String why = spec.nodeName != null ? "requested in spec.placement.nodeName"
        : matcher.isSource(chosen) ? "the source node"
        : matcher.hasSourceCpuModel(chosen) ? "compatible, same CPU model as the source"
        : "compatible, most free space";
    return new PlacementDecision(Optional.of(chosen.name), why, considered, rejected);
  }
}
