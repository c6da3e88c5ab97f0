package dev.stasis.operator.placement;

import dev.stasis.api.NodeProfile;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The cluster's NodeProfiles prepared for placement, kept across reconciles: a profile is prepared
 * again only when its resourceVersion changed. Preparing hundreds of profiles with their CPU flags
 * for every Restore would cost more than placing it. Thread-safe.
 */
public final class NodeProfileIndex {
  private final FlagVocabulary vocabulary = new FlagVocabulary();
  private final Map<String, Candidate> prepared = new ConcurrentHashMap<>();

  /** A placement over exactly these profiles (the current list of all of them). */
  public Placement placementOver(List<NodeProfile> profiles) {
    List<Candidate> candidates = new ArrayList<>(profiles.size());
    Set<String> names = new HashSet<>();
    for (NodeProfile profile : profiles) {
      String name = profile.getMetadata().getName();
      String version = Candidate.version(profile);
      Candidate candidate = prepared.get(name);
      if (candidate == null || version == null || !version.equals(candidate.version)) {
        candidate = new Candidate(profile, vocabulary);
        prepared.put(name, candidate);
      }
      candidates.add(candidate);
      names.add(name);
    }
    if (prepared.size() > names.size()) {
      prepared.keySet().retainAll(names); // profiles of nodes that are gone
    }
    return new Placement(candidates, vocabulary);
  }
}
