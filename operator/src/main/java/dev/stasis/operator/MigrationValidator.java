package dev.stasis.operator;

import dev.stasis.api.Migration;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProcessTarget;
import dev.stasis.kube.PodTargets;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;

/**
 * Whether a Migration can begin as written: a function of its spec and of what the operator observed
 * (the NodeProfile of the target's node, the target pod). It refuses before anything is stopped. Whether the
 * namespace may checkpoint the process, and whether the storage takes the archive, the Migration's
 * Checkpoint finds out as any Checkpoint does, before the workload is touched.
 */
final class MigrationValidator {
  private MigrationValidator() {}

  /** What the operator looked up for a Migration. */
  interface Observed {
    /** The NodeProfile its agent publishes for {@code node}; null when no agent runs there. */
    NodeProfile nodeProfile(String node);

    /** The pod of that name in the Migration's namespace; null when there is none. */
    Pod pod(String name);
  }

  /**
   * Where the target runs now, and that node's profile: what a checkpoint of it will need of another
   * node; for a pod target, the pod (the Migration deletes exactly that one once its checkpoint is stored).
   */
  record Source(String node, NodeProfile profile, Pod pod) {}

  static Source validate(Migration migration, Observed observed) throws Refusal {
    MigrationSpec spec = migration.getSpec();
    if (spec == null || spec.target == null || (spec.target.process == null) == (spec.target.pod == null)) {
      throw new Refusal("InvalidTarget", "set exactly one of spec.target.process (a process tree on a node) or spec.target.pod");
    }
    Source source = spec.target.pod != null ? podSource(migration, observed) : processSource(spec.target.process, observed);
    String named = spec.placementOrDefaults().nodeName;
    if (source.node().equals(named) && !spec.allowsSourceNode()) {
      throw new Refusal("SourceNodeNotAllowed", "spec.placement.nodeName names node '" + named + "', where the target runs"
          + " now: name another node, or set spec.allowSourceNode to stop and restore it in place");
    }
    return source;
  }

  private static Source processSource(ProcessTarget process, Observed observed) throws Refusal {
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", "spec.target.process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid", "spec.target.process.pid must be the PID of a workload process (2 or more), got "
          + process.pid);
    }
    return new Source(process.node, agentOn(process.node, observed), null);
  }

  /**
   * A running pod that nothing starts again once the Migration deletes it: a pod of a ReplicaSet,
   * StatefulSet, Job or DaemonSet would be replaced by its controller, and then run twice.
   */
  private static Source podSource(Migration migration, Observed observed) throws Refusal {
    var target = migration.getSpec().target.pod;
    PodTargets.ResolvedPod resolved;
    try {
      boolean named = target.name != null && !target.name.isBlank();
      resolved = PodTargets.resolve(migration.getMetadata().getNamespace(), target, named ? observed.pod(target.name) : null);
    } catch (PodTargets.Unusable e) {
      throw new Refusal(e.reason(), e.getMessage());
    }
    Pod pod = resolved.pod();
    OwnerReference controller = PodTargets.replacingController(pod).orElse(null);
    if (controller != null) {
      throw new Refusal("PodHasController", "pod '" + pod.getMetadata().getName() + "' belongs to " + controller.getKind()
          + " " + controller.getName() + ", which would start a new copy of it when the Migration deletes it, and the"
          + " workload would run twice: move a pod of no controller (or one a Restore made), or checkpoint this one and"
          + " restore it as the README's \"Pods of Deployments, StatefulSets and Jobs\" says");
    }
    return new Source(resolved.node(), agentOn(resolved.node(), observed), pod);
  }

  private static NodeProfile agentOn(String node, Observed observed) throws Refusal {
    NodeProfile profile = observed.nodeProfile(node);
    if (profile == null || profile.getSpec() == null) {
      throw new Refusal("NodeNotFound", "no Stasis agent runs on node '" + node + "' (there is no NodeProfile of"
          + " that name): check the node name (kubectl get nodeprof) and that the agent runs there");
    }
    return profile;
  }
}
