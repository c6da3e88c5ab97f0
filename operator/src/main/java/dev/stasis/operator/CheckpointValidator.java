package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.ProcessTarget;
import dev.stasis.kube.PodTargets;
import dev.stasis.kube.StorageBinding;
import dev.stasis.operator.schedule.Durations;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.ArrayList;
import java.util.List;

/**
 * Whether a Checkpoint can be handed to an agent as written: a function of its spec and of what the
 * operator observed (which nodes run an agent, the pod it names, the storage it resolved to). The
 * CRD schema checks the shape too; this guards clusters where it was bypassed. Whose process a PID
 * is only the node's agent can tell: it checks before it touches it.
 */
final class CheckpointValidator {
  private CheckpointValidator() {}

  /** What the operator looked up for a Checkpoint. */
  interface Observed {
    /** Whether a Stasis agent runs on {@code node}: it publishes a NodeProfile of that name. */
    boolean hasAgent(String node);

    /** The pod of that name in the Checkpoint's namespace (never another's); null when there is none. */
    Pod pod(String name);
  }

  /** The node whose agent does the work and, for pod targets, the containers it checkpoints. */
  record Assignment(String node, List<ContainerCheckpointStatus> containers) {}

  static Assignment validate(Checkpoint checkpoint, Observed observed) throws Refusal {
    var spec = checkpoint.getSpec();
    if (spec == null || spec.target == null || (spec.target.process == null) == (spec.target.pod == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of spec.target.process (a process tree on a node) or spec.target.pod");
    }
    if (spec.ttl != null) {
      try {
        Durations.parse(spec.ttl);
      } catch (IllegalArgumentException e) {
        throw new Refusal("InvalidTtl", "spec.ttl: " + e.getMessage());
      }
    }
    return spec.target.pod != null ? validatePod(checkpoint, observed) : validateProcess(spec.target.process, observed);
  }

  private static Assignment validateProcess(ProcessTarget process, Observed observed) throws Refusal {
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", "spec.target.process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid",
          "spec.target.process.pid must be the PID of a workload process (2 or more), got " + process.pid);
    }
    if (!observed.hasAgent(process.node)) {
      throw new Refusal("NodeNotFound",
          "no Stasis agent runs on node '" + process.node + "' (there is no NodeProfile of that name): "
              + "check the node name (kubectl get nodeprof) and that the agent runs there");
    }
    return new Assignment(process.node, null);
  }

  /** The pod in the Checkpoint's own namespace, checkpointed by its node's agent. */
  private static Assignment validatePod(Checkpoint checkpoint, Observed observed) throws Refusal {
    CheckpointOptions options = checkpoint.getSpec().optionsOrDefaults();
    List<String> unsupported = optionsNotForPods(options);
    if (!unsupported.isEmpty()) {
      throw new Refusal("OptionNotSupported", "the kubelet checkpoints pods with the runtime's own CRIU options, so "
          + String.join(", ", unsupported) + " cannot apply to a pod target: remove "
          + (unsupported.size() > 1 ? "them" : "it") + " from spec.options");
    }
    var target = checkpoint.getSpec().target.pod;
    PodTargets.ResolvedPod pod;
    try {
      boolean named = target.name != null && !target.name.isBlank();
      pod = PodTargets.resolve(checkpoint.getMetadata().getNamespace(), target, named ? observed.pod(target.name) : null);
    } catch (PodTargets.Unusable e) {
      throw new Refusal(e.reason(), e.getMessage());
    }
    if (!observed.hasAgent(pod.node())) {
      throw new Refusal("NodeNotFound", "pod '" + pod.pod().getMetadata().getName() + "' runs on node '" + pod.node()
          + "', where no Stasis agent runs (there is no NodeProfile of that name): deploy the agent there");
    }
    return new Assignment(pod.node(), pod.containers());
  }

  /** Options that only CRIU run by the agent can honour; the kubelet's API takes none of them. */
  private static List<String> optionsNotForPods(CheckpointOptions options) {
    List<String> unsupported = new ArrayList<>();
    if (!options.leaveRunning()) unsupported.add("leaveRunning: false");
    if (Boolean.TRUE.equals(options.tcpEstablished)) unsupported.add("tcpEstablished");
    if (Boolean.TRUE.equals(options.fileLocks)) unsupported.add("fileLocks");
    if (Boolean.TRUE.equals(options.shellJob)) unsupported.add("shellJob");
    if (options.externalMounts != null && !options.externalMounts.isEmpty()) unsupported.add("externalMounts");
    return unsupported;
  }

  /** The storage the Checkpoint's spec resolved to, if this namespace may use it and its last check found it available. */
  static CheckpointStorage requireUsable(CheckpointStorage storage, String namespace) throws Refusal {
    var notAllowed = StorageBinding.refusal(storage, namespace);
    if (notAllowed.isPresent()) {
      throw new Refusal("StorageNotAllowed", notAllowed.get());
    }
    CheckpointStorageStatus status = storage.getStatus();
    if (status != null && CheckpointStorageStatus.UNAVAILABLE.equals(status.phase)) {
      // The storage's own reason says what to fix (its encryption key, its bucket).
      throw new Refusal(status.reason != null ? status.reason : "StorageUnavailable", "CheckpointStorage '"
          + storage.getMetadata().getName() + "' is unavailable: " + status.message);
    }
    return storage;
  }
}
