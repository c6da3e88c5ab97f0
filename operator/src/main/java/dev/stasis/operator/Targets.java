package dev.stasis.operator;

import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.ProcessTarget;

/** The rules a checkpoint target must follow, for Checkpoints and for schedules' templates alike. */
final class Targets {
  private Targets() {}

  /**
   * The process target {@code target} names. The CRD schema checks the same; this guards clusters
   * where it was bypassed. {@code field} is where the target is in the spec, for the messages.
   */
  static ProcessTarget processTarget(CheckpointTarget target, String field) throws Refusal {
    if (target == null || (target.process == null) == (target.pod == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of " + field + ".process (a process tree on a node) or " + field + ".pod");
    }
    if (target.pod != null) {
      throw new Refusal("PodTargetNotSupported",
          "pod targets are not supported by this version of Stasis yet; checkpoint the pod's process with "
              + field + ".process");
    }
    ProcessTarget process = target.process;
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", field + ".process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid",
          field + ".process.pid must be the PID of a workload process (2 or more), got " + process.pid);
    }
    return process;
  }
}
