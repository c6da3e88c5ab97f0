package dev.stasis.operator.placement;

import dev.stasis.api.NodeProfileSpec;
import dev.stasis.criu.CriuVersion;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * Decides whether a node can run a checkpoint taken on another node. What CRIU needs (the CRIU
 * study behind Stasis): the same architecture, every CPU feature the source had (code compiled for
 * the source CPU may use any of them), and a CRIU at least as new as the one that wrote the images.
 */
public final class NodeMatcher {
  private NodeMatcher() {}

  /** Empty when the candidate can run the checkpoint; otherwise every reason it cannot. */
  public static List<String> incompatibilities(NodeProfileSpec source, NodeProfileSpec candidate) {
    List<String> reasons = new ArrayList<>();
    if (source.arch != null && !source.arch.equals(candidate.arch)) {
      reasons.add("arch " + candidate.arch + " != " + source.arch);
    }
    if (source.cpu != null && source.cpu.flags != null && !source.cpu.flags.isEmpty()) {
      var have = candidate.cpu == null || candidate.cpu.flags == null ? List.<String>of() : candidate.cpu.flags;
      var missing = new TreeSet<>(source.cpu.flags);
      missing.removeAll(have);
      if (!missing.isEmpty()) {
        reasons.add("missing CPU flags [" + String.join(" ", missing) + "]");
      }
    }
    String sourceCriu = criuVersion(source);
    String candidateCriu = criuVersion(candidate);
    if (candidateCriu == null) {
      reasons.add("no CRIU");
    } else if (sourceCriu != null
        && !CriuVersion.parse(candidateCriu).isAtLeast(CriuVersion.parse(sourceCriu))) {
      reasons.add("CRIU " + candidateCriu + " < " + sourceCriu);
    }
    return reasons;
  }

  private static String criuVersion(NodeProfileSpec profile) {
    return profile.criu == null || profile.criu.version == null || profile.criu.version.isBlank()
        ? null
        : profile.criu.version;
  }
}
