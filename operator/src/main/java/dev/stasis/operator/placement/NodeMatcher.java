package dev.stasis.operator.placement;

import dev.stasis.api.Compatibility;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.RestorePlacement;
import dev.stasis.criu.CriuVersion;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Decides whether a node can run one checkpoint, and says every reason it cannot. What CRIU needs
 * (the CRIU study behind Stasis): the same architecture; every CPU flag of the source (code built
 * for the source CPU may use any of them); a CRIU at least as new as the one that wrote the images,
 * whose {@code criu check} passes; the same container runtime family, and for a pod checkpoint a
 * runtime that restores containers from checkpoint images (its NodeProfile says whether, by the
 * runtime's rules). Established TCP connections survive only on their own host, unless they are
 * loopback connections with both ends in the tree; and CRIU cannot restore GPU state. {@code Strict}
 * also wants the same CPU model, kernel, OS and CRIU features; {@code spec.placement.nodeSelector}
 * and {@code excludeNodes} narrow the nodes.
 */
public final class NodeMatcher {
  private static final String RUNTIME_UNREACHABLE = "runtime unreachable: ";

  private final CheckpointNeeds needs;
  private final RestorePlacement placement;
  private final Map<String, String> excludedNodes;
  private final FlagVocabulary vocabulary;
  private final BitSet sourceFlags;
  private final BitSet sourceFeatures;
  private final CriuVersion sourceCriu;
  private final String sourceModel;
  // The same for every node; built once per checkpoint, since most nodes of a big cluster hear them.
  private final String selectorMismatch;
  private final String tcpElsewhere;
  private final String gpusUsed;
  /** "missing CPU flags [...]" per distinct flag set: nodes of one kind share both flags and reason. */
  private final Map<BitSet, String> missingFlagsByFlagSet = new HashMap<>();

  /**
   * @param excludedNodes node → why, for nodes ruled out whatever they offer: their pre-flight
   *     already failed for this restore, or their agent is gone
   */
  NodeMatcher(CheckpointNeeds needs, RestorePlacement placement, Map<String, String> excludedNodes,
      FlagVocabulary vocabulary) {
    this.needs = needs;
    this.placement = placement != null ? placement : new RestorePlacement();
    this.excludedNodes = excludedNodes;
    this.vocabulary = vocabulary;
    NodeProfileSpec source = needs.source();
    this.sourceFlags = vocabulary.bits(source.cpu == null ? null : source.cpu.flags);
    this.sourceFeatures = vocabulary.bits(source.criu == null ? null : source.criu.features);
    this.sourceCriu = parse(needs.criuVersion());
    this.sourceModel = Candidate.cpuModel(source);
    this.selectorMismatch = this.placement.nodeSelector == null ? null
        : "labels do not match nodeSelector " + new TreeMap<>(this.placement.nodeSelector);
    this.tcpElsewhere = "checkpoint holds established TCP connections, which survive only on node " + needs.sourceNode();
    this.gpusUsed = "checkpoint used GPUs " + needs.gpuDevices() + ", which CRIU cannot restore";
  }

  /** Every reason {@code candidate} cannot run the checkpoint; empty when it can. */
  public static List<String> incompatibilities(CheckpointNeeds needs, RestorePlacement placement, NodeProfile candidate) {
    FlagVocabulary vocabulary = new FlagVocabulary();
    return new NodeMatcher(needs, placement, Map.of(), vocabulary)
        .incompatibilities(new Candidate(candidate, vocabulary));
  }

  List<String> incompatibilities(Candidate node) {
    List<String> reasons = new ArrayList<>();
    if (node.spec == null) {
      reasons.add("no profile published yet");
      return reasons;
    }
    String excluded = excludedNodes.get(node.name);
    if (excluded != null) {
      reasons.add(excluded);
    }
    if (placement.excludeNodes != null && placement.excludeNodes.contains(node.name)) {
      reasons.add("excluded by spec.placement.excludeNodes");
    }
    if (!selects(placement.nodeSelector, node.labels)) {
      reasons.add(selectorMismatch);
    }
    if (!needs.gpuDevices().isEmpty()) {
      reasons.add(gpusUsed);
    }
    if (needs.tcpBoundToSourceNode() && !node.name.equals(needs.sourceNode())) {
      reasons.add(tcpElsewhere);
    }
    NodeProfileSpec source = needs.source();
    if (source.arch != null && !source.arch.equals(node.spec.arch)) {
      reasons.add("arch " + node.spec.arch + " != " + source.arch);
    }
    String missingFlags = missingFlagsByFlagSet.computeIfAbsent(node.cpuFlags, flags -> {
      List<String> missing = vocabulary.missing(sourceFlags, flags);
      return missing.isEmpty() ? "" : "missing CPU flags [" + String.join(" ", missing) + "]";
    });
    if (!missingFlags.isEmpty()) {
      reasons.add(missingFlags);
    }
    if (node.criu == null) {
      reasons.add("no CRIU");
    } else {
      if (sourceCriu != null && !node.criu.isAtLeast(sourceCriu)) {
        reasons.add("CRIU " + node.spec.criu.version + " < " + needs.criuVersion());
      }
      if (Boolean.FALSE.equals(node.spec.criu.checkPassed)) {
        reasons.add("criu check fails (" + node.spec.criu.checkMessage + ")");
      }
    }
    String sourceRuntime = runtime(source);
    if (sourceRuntime != null && runtime(node.spec) != null && !sourceRuntime.equals(runtime(node.spec))) {
      reasons.add("runtime " + runtime(node.spec) + " != " + sourceRuntime);
    }
    if (needs.podCheckpoint()) {
      runtimeCannotRestore(node.spec.runtime).ifPresent(reasons::add);
    }
    if (placement.compatibilityOrDefault() == Compatibility.Strict) {
      strictDifferences(node, reasons);
    }
    return reasons;
  }

  private void strictDifferences(Candidate node, List<String> reasons) {
    NodeProfileSpec source = needs.source();
    if (sourceModel != null && !sourceModel.equals(node.cpuModel)) {
      reasons.add("CPU model " + node.cpuModel + " != " + sourceModel + " (Strict)");
    }
    if (source.kernelRelease != null && !source.kernelRelease.equals(node.spec.kernelRelease)) {
      reasons.add("kernel " + node.spec.kernelRelease + " != " + source.kernelRelease + " (Strict)");
    }
    if (source.os != null && !(Objects.equals(source.os.id, osId(node.spec)) && Objects.equals(source.os.versionId, osVersion(node.spec)))) {
      reasons.add("OS " + osId(node.spec) + " " + osVersion(node.spec) + " != " + source.os.id + " " + source.os.versionId + " (Strict)");
    }
    List<String> missingFeatures = vocabulary.missing(sourceFeatures, node.criuFeatures);
    if (!missingFeatures.isEmpty()) {
      reasons.add("missing CRIU features [" + String.join(" ", missingFeatures) + "] (Strict)");
    }
  }

  /** Whether {@code candidate} is where a restore without a named node goes first. */
  boolean isSource(Candidate candidate) {
    return candidate.name.equals(needs.sourceNode());
  }

  boolean hasSourceCpuModel(Candidate candidate) {
    return sourceModel != null && sourceModel.equals(candidate.cpuModel);
  }

  private static boolean selects(Map<String, String> selector, Map<String, String> labels) {
    if (selector == null) {
      return true;
    }
    for (var required : selector.entrySet()) {
      if (!Objects.equals(labels.get(required.getKey()), required.getValue())) {
        return false;
      }
    }
    return true;
  }

  /** Why the node's runtime cannot restore a pod's containers from checkpoint images, and what would let it. */
  private static Optional<String> runtimeCannotRestore(NodeProfileSpec.RuntimeInfo runtime) {
    NodeProfileSpec.RuntimeRestore restore = runtime == null ? null : runtime.restore;
    if (restore == null) {
      return Optional.of("the node's agent does not say whether its container runtime restores from checkpoint images"
          + " (it is older than the operator): upgrade it");
    }
    if (restore.restores()) {
      return Optional.empty();
    }
    return Optional.of((restore.unreachable() ? RUNTIME_UNREACHABLE : "runtime cannot restore: ") + restore.message
        + (restore.remedy == null ? "" : "; " + restore.remedy));
  }

  /**
   * Whether a node rejected for {@code reason} may take the checkpoint in a moment without anyone
   * doing anything: its kubelet cannot reach its container runtime just now (a runtime restarting).
   */
  public static boolean passesByItself(String reason) {
    return reason.startsWith(RUNTIME_UNREACHABLE);
  }

  private static String runtime(NodeProfileSpec spec) {
    return spec.runtime == null ? null : spec.runtime.name;
  }

  private static String osId(NodeProfileSpec spec) {
    return spec.os == null ? null : spec.os.id;
  }

  private static String osVersion(NodeProfileSpec spec) {
    return spec.os == null ? null : spec.os.versionId;
  }

  private static CriuVersion parse(String version) {
    try {
      return version == null || version.isBlank() ? null : CriuVersion.parse(version);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
