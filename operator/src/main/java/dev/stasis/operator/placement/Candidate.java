package dev.stasis.operator.placement;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.criu.CriuVersion;
import java.util.BitSet;
import java.util.Map;

/** A node's profile prepared once for matching many checkpoints against it. */
final class Candidate {
  final String name;
  /** uid and resourceVersion of the profile this was prepared from: while they hold, it is current. */
  final String version;
  /** Null while the node's agent has not published a profile yet. */
  final NodeProfileSpec spec;
  final Map<String, String> labels;
  final BitSet cpuFlags;
  final BitSet criuFeatures;
  /** Null when the node has no CRIU, or none that answered. */
  final CriuVersion criu;
  final String cpuModel;
  final long freeBytes;

  Candidate(NodeProfile profile, FlagVocabulary vocabulary) {
    this.name = profile.getMetadata().getName();
    this.version = version(profile);
    this.spec = profile.getSpec();
    this.labels = profile.getMetadata().getLabels() == null ? Map.of() : profile.getMetadata().getLabels();
    this.cpuFlags = vocabulary.bits(spec == null || spec.cpu == null ? null : spec.cpu.flags);
    this.criuFeatures = vocabulary.bits(spec == null || spec.criu == null ? null : spec.criu.features);
    this.criu = spec == null ? null : criuVersion(spec);
    this.cpuModel = spec == null ? null : cpuModel(spec);
    this.freeBytes = spec == null || spec.workDirFreeBytes == null ? 0 : spec.workDirFreeBytes;
  }

  /** Null for a profile that was never stored (no resourceVersion): such a profile is never reused. */
  static String version(NodeProfile profile) {
    var meta = profile.getMetadata();
    return meta.getResourceVersion() == null ? null : meta.getUid() + "/" + meta.getResourceVersion();
  }

  static CriuVersion criuVersion(NodeProfileSpec spec) {
    if (spec.criu == null || spec.criu.version == null || spec.criu.version.isBlank()) {
      return null;
    }
    try {
      return CriuVersion.parse(spec.criu.version);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /** The CPU's model name, else vendor, family and model numbers; null when unknown. */
  static String cpuModel(NodeProfileSpec spec) {
    if (spec.cpu == null) {
      return null;
    }
    if (spec.cpu.modelName != null && !spec.cpu.modelName.isBlank()) {
      return spec.cpu.modelName;
    }
    if (spec.cpu.vendor == null) {
      return null;
    }
    return spec.cpu.vendor + " family " + spec.cpu.family + " model " + spec.cpu.model;
  }
}
