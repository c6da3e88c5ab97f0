package dev.stasis.operator;

import dev.stasis.api.Migration;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProcessTarget;

/**
 * Whether a Migration can begin as written: a function of its spec and of what the operator observed
 * (the NodeProfile of the target's node). It refuses before anything is stopped. Whether the
 * namespace may checkpoint the process, and whether the storage takes the archive, the Migration's
 * Checkpoint finds out as any Checkpoint does, before the workload is touched.
 */
final class MigrationValidator {
  private MigrationValidator() {}

  /** What the operator looked up for a Migration. */
  interface Observed {
    /** The NodeProfile its agent publishes for {@code node}; null when no agent runs there. */
    NodeProfile nodeProfile(String node);
  }

  /** Where the target runs now, and that node's profile: what a checkpoint of it will need of another node. */
  record Source(String node, NodeProfile profile) {}

  static Source validate(Migration migration, Observed observed) throws Refusal {
    MigrationSpec spec = migration.getSpec();
    if (spec == null || spec.target == null || (spec.target.process == null) == (spec.target.pod == null)) {
      throw new Refusal("InvalidTarget", "set exactly one of spec.target.process (a process tree on a node) or spec.target.pod");
    }
    if (spec.target.pod != null) {
      throw new Refusal("PodTargetNotSupported", "a Migration moves process trees (spec.target.process) so far; to move"
          + " pod '" + spec.target.pod.name + "', take a Checkpoint of it, delete the pod, and create a Restore");
    }
    ProcessTarget process = spec.target.process;
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", "spec.target.process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid", "spec.target.process.pid must be the PID of a workload process (2 or more), got "
          + process.pid);
    }
    NodeProfile profile = observed.nodeProfile(process.node);
    if (profile == null || profile.getSpec() == null) {
      throw new Refusal("NodeNotFound", "no Stasis agent runs on node '" + process.node + "' (there is no NodeProfile of"
          + " that name): check the node name (kubectl get nodeprof) and that the agent runs there");
    }
    String named = spec.placementOrDefaults().nodeName;
    if (process.node.equals(named) && !spec.allowsSourceNode()) {
      throw new Refusal("SourceNodeNotAllowed", "spec.placement.nodeName names node '" + named + "', where the target runs"
          + " now: name another node, or set spec.allowSourceNode to stop and restore it in place");
    }
    return new Source(process.node, profile);
  }
}
