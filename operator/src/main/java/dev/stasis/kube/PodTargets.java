package dev.stasis.kube;

import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.PodTarget;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds the pod a Checkpoint names, in the Checkpoint's own namespace only, and decides whether it
 * can be checkpointed through the kubelet: Running, on a node, the named container(s) running,
 * and no GPUs. The operator checks before it assigns the work; the agent checks again before it
 * asks the kubelet, since the pod may have changed in between.
 */
public final class PodTargets {
  /** Device-plugin resources of GPUs; CRIU's CUDA and ROCm plugins are not supported yet. */
  public static final List<String> GPU_RESOURCES = List.of("nvidia.com/gpu", "amd.com/gpu");

  private PodTargets() {}

  /**
   * The controller that would start a new copy of {@code pod} once it is deleted (a ReplicaSet,
   * StatefulSet, Job, DaemonSet...): any controller but the Restore that made it.
   */
  public static Optional<OwnerReference> replacingController(Pod pod) {
    var owners = pod.getMetadata().getOwnerReferences();
    return owners == null ? Optional.empty() : owners.stream()
        .filter(o -> Boolean.TRUE.equals(o.getController()) && !"Restore".equals(o.getKind())).findFirst();
  }

  /** A pod that can be checkpointed: where it runs and which containers to checkpoint. */
  public record ResolvedPod(Pod pod, String node, List<ContainerCheckpointStatus> containers) {}

  /** A pod that cannot be checkpointed, with a stable reason and words that say what to do. */
  public static final class Unusable extends Exception {
    private final String reason;

    Unusable(String reason, String message) {
      super(message);
      this.reason = reason;
    }

    public String reason() {
      return reason;
    }
  }

  public static ResolvedPod resolve(KubernetesClient client, String namespace, PodTarget target) throws Unusable {
    boolean named = target != null && target.name != null && !target.name.isBlank();
    return resolve(namespace, target, named ? client.pods().inNamespace(namespace).withName(target.name).get() : null);
  }

  /** The pod {@code target} names, given as it was read from {@code namespace} (null: there is none). */
  public static ResolvedPod resolve(String namespace, PodTarget target, Pod pod) throws Unusable {
    if (target == null || target.name == null || target.name.isBlank()) {
      throw new Unusable("InvalidTarget", "spec.target.pod.name is required: the pod to checkpoint");
    }
    if (pod == null) {
      throw new Unusable("PodNotFound", "pod '" + target.name + "' does not exist in namespace " + namespace
          + ": fix spec.target.pod.name (kubectl get pods -n " + namespace + ")");
    }
    return resolve(pod, target.namedContainers());
  }

  /**
   * Whether {@code pod} can be checkpointed now, and which of its containers: those named, or all
   * of them when {@code named} is empty.
   */
  public static ResolvedPod resolve(Pod pod, List<String> named) throws Unusable {
    String name = pod.getMetadata().getName();
    String phase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
    String node = pod.getSpec().getNodeName();
    if (pod.getMetadata().getDeletionTimestamp() != null) {
      throw new Unusable("PodNotRunning", "pod '" + name + "' is being deleted: there is nothing left to checkpoint");
    }
    if (!"Running".equals(phase) || node == null || node.isBlank()) {
      throw new Unusable("PodNotRunning", "pod '" + name + "' is " + (phase == null ? "not started" : phase)
          + (node == null || node.isBlank() ? " and not scheduled to a node" : "")
          + ": only Running pods can be checkpointed; create the Checkpoint once it runs");
    }
    Optional<String> gpu = gpuRequest(pod);
    if (gpu.isPresent()) {
      throw new Unusable("GpuNotSupported", "pod '" + name + "' uses GPUs (" + gpu.get()
          + "): GPU checkpoints are not supported yet (CRIU's CUDA and ROCm plugins are future work)");
    }
    List<String> names = pod.getSpec().getContainers().stream().map(Container::getName).toList();
    List<String> wanted = named.isEmpty() ? names : named.stream().distinct().toList();
    List<String> missing = wanted.stream().filter(c -> !names.contains(c)).toList();
    if (!missing.isEmpty()) {
      throw new Unusable("ContainerNotFound", "pod '" + name + "' has no container '" + String.join("', '", missing)
          + "' (its containers: " + String.join(", ", names) + "): name only containers it has");
    }
    List<ContainerCheckpointStatus> containers = new ArrayList<>();
    for (String container : wanted) {
      ContainerStatus status = containerStatus(pod, container);
      if (status == null || status.getState() == null || status.getState().getRunning() == null
          || status.getContainerID() == null) {
        throw new Unusable("ContainerNotRunning", "container '" + container + "' of pod '" + name
            + "' is not running" + (status == null || status.getState() == null ? "" : waiting(status))
            + ": only running containers can be checkpointed");
      }
      containers.add(new ContainerCheckpointStatus(container, status.getContainerID()));
    }
    return new ResolvedPod(pod, node, containers);
  }

  private static ContainerStatus containerStatus(Pod pod, String container) {
    if (pod.getStatus().getContainerStatuses() == null) {
      return null;
    }
    return pod.getStatus().getContainerStatuses().stream()
        .filter(s -> container.equals(s.getName())).findFirst().orElse(null);
  }

  private static String waiting(ContainerStatus status) {
    var waiting = status.getState().getWaiting();
    return waiting == null ? "" : " (" + waiting.getReason() + ")";
  }

  /** The first GPU a container (init containers too) requests or is limited to, as "resource in container". */
  static Optional<String> gpuRequest(Pod pod) {
    var spec = pod.getSpec();
    return Stream.concat(
            spec.getInitContainers() == null ? Stream.empty() : spec.getInitContainers().stream(),
            spec.getContainers().stream())
        .flatMap(c -> gpuResources(c.getResources()).map(r -> r + " in container " + c.getName()))
        .findFirst();
  }

  private static Stream<String> gpuResources(ResourceRequirements resources) {
    if (resources == null) {
      return Stream.empty();
    }
    return Stream.of(resources.getRequests(), resources.getLimits())
        .filter(m -> m != null)
        .flatMap((Map<String, Quantity> m) -> m.keySet().stream())
        .filter(GPU_RESOURCES::contains)
        .distinct();
  }
}
