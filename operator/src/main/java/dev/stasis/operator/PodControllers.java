package dev.stasis.operator;

import dev.stasis.api.ControllerLabels;
import dev.stasis.api.Restore;
import dev.stasis.archive.Manifest;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.ReplicaSet;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * What restoring a pod of a controller means, the way a user of each controller expects it (README,
 * "Pods of Deployments, StatefulSets and Jobs"). The restored pod belongs to its Restore (a
 * controller owner reference): a ReplicaSet, StatefulSet or Job adopts only pods without a
 * controller, and counts and deletes only its own, so the old controller neither adopts, nor
 * deletes, nor counts it. By default it also loses the labels by which that controller selected
 * it. A StatefulSet's pod keeps its identity (its name, hence hostname and volume claims), which
 * only one pod may have: it is restored only once the StatefulSet no longer runs that ordinal. A
 * Job's pod is restored only once the Job is suspended or finished, or it would do the work twice.
 */
final class PodControllers {
  /** On every restored pod: the Restore it came back through. */
  static final String RESTORE_LABEL = "stasis.dev/restore";
  /** Labels Kubernetes' controllers put on the pods they make, besides their template's. */
  static final Set<String> CONTROLLER_SET_LABELS = Set.of("pod-template-hash", "controller-revision-hash",
      "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index", "controller-uid", "job-name",
      "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "batch.kubernetes.io/job-completion-index");

  private final KubernetesClient client;

  PodControllers(KubernetesClient client) {
    this.client = client;
  }

  /** Refuses while the checkpointed pod's controller runs (or will run) the same work or identity. */
  void requireRestorable(Restore restore, Manifest manifest) throws Refusal {
    Manifest.Owner owner = manifest.source.podController;
    if (owner == null) {
      return;
    }
    String namespace = restore.getMetadata().getNamespace();
    if ("StatefulSet".equals(owner.kind)) {
      StatefulSet set = client.apps().statefulSets().inNamespace(namespace).withName(owner.name).get();
      Integer ordinal = ordinal(owner.name, manifest.source.podName);
      if (set != null && ordinal != null && runs(set, ordinal)) {
        throw new Refusal("StatefulSetRunsPod", "StatefulSet " + owner.name + " runs pod " + manifest.source.podName
            + " (" + replicas(set) + " replicas): two pods of one identity (name, hostname, volume claims) must never"
            + " run. Scale it below that ordinal (kubectl -n " + namespace + " scale statefulset " + owner.name
            + " --replicas=" + (ordinal - start(set)) + "), or delete it and keep its other pods (kubectl -n "
            + namespace + " delete statefulset " + owner.name + " --cascade=orphan), then restore again");
      }
    } else if ("Job".equals(owner.kind)) {
      Job job = client.batch().v1().jobs().inNamespace(namespace).withName(owner.name).get();
      if (job != null && !Boolean.TRUE.equals(job.getSpec().getSuspend()) && !finished(job)) {
        throw new Refusal("JobStillRunning", "Job " + owner.name + " has not finished and is not suspended: it runs"
            + " (or will start) the work of pod " + manifest.source.podName + " again, and the restored pod would"
            + " do it a second time. Suspend it (kubectl -n " + namespace + " patch job " + owner.name
            + " --type merge -p '{\"spec\":{\"suspend\":true}}'; it deletes its running pods) or delete it, then"
            + " restore again");
      }
    }
  }

  /** spec.pod.name, else the StatefulSet pod's own name (its identity), else {@code <pod>-<5 of the Restore's UID>}. */
  static String name(Restore restore, Manifest manifest) {
    var pod = restore.getSpec().pod;
    if (pod != null && pod.name != null && !pod.name.isBlank()) {
      return pod.name;
    }
    Manifest.Owner owner = manifest.source.podController;
    if (owner != null && "StatefulSet".equals(owner.kind)) {
      return manifest.source.podName;
    }
    return manifest.source.podName + "-" + restore.getMetadata().getUid().substring(0, 5);
  }

  /** The source pod's labels, without its controller's unless spec.pod.controllerLabels is Keep. */
  Map<String, String> labels(Restore restore, Manifest manifest) {
    Map<String, String> labels = manifest.source.podLabels == null ? new HashMap<>() : new HashMap<>(manifest.source.podLabels);
    var pod = restore.getSpec().pod;
    ControllerLabels keep = pod == null ? ControllerLabels.Remove : pod.controllerLabelsOrDefault();
    if (manifest.source.podController != null && keep == ControllerLabels.Remove) {
      labels.keySet().removeAll(CONTROLLER_SET_LABELS);
      labels.keySet().removeAll(selectorKeys(restore.getMetadata().getNamespace(), manifest.source.podController));
    }
    labels.put(RESTORE_LABEL, restore.getMetadata().getName());
    return labels;
  }

  /** The restored pod belongs to its Restore; deleting the Restore deletes it. */
  static OwnerReference owner(Restore restore) {
    return new OwnerReferenceBuilder().withApiVersion(restore.getApiVersion()).withKind(restore.getKind())
        .withName(restore.getMetadata().getName()).withUid(restore.getMetadata().getUid()).withController(true).build();
  }

  /** The label keys the controller selects its pods by, if it still exists. */
  private Set<String> selectorKeys(String namespace, Manifest.Owner owner) {
    LabelSelector selector = switch (owner.kind == null ? "" : owner.kind) {
      case "ReplicaSet" -> selector(client.apps().replicaSets().inNamespace(namespace).withName(owner.name).get());
      case "StatefulSet" -> selector(client.apps().statefulSets().inNamespace(namespace).withName(owner.name).get());
      case "DaemonSet" -> selector(client.apps().daemonSets().inNamespace(namespace).withName(owner.name).get());
      case "Job" -> selector(client.batch().v1().jobs().inNamespace(namespace).withName(owner.name).get());
      default -> null;
    };
    Set<String> keys = new HashSet<>();
    if (selector != null) {
      if (selector.getMatchLabels() != null) {
        keys.addAll(selector.getMatchLabels().keySet());
      }
      if (selector.getMatchExpressions() != null) {
        selector.getMatchExpressions().forEach(e -> keys.add(e.getKey()));
      }
    }
    return keys;
  }

  private static LabelSelector selector(HasMetadata controller) {
    if (controller instanceof ReplicaSet rs) return rs.getSpec().getSelector();
    if (controller instanceof StatefulSet set) return set.getSpec().getSelector();
    if (controller instanceof DaemonSet ds) return ds.getSpec().getSelector();
    if (controller instanceof Job job) return job.getSpec().getSelector();
    return null;
  }

  /** A StatefulSet names its pods {@code <set>-<ordinal>}. */
  private static Integer ordinal(String set, String pod) {
    String prefix = set + "-";
    if (pod == null || !pod.startsWith(prefix)) {
      return null;
    }
    try {
      return Integer.parseInt(pod.substring(prefix.length()));
    } catch (NumberFormatException e) {
      return null;
    }
  }

  private static boolean runs(StatefulSet set, int ordinal) {
    int start = start(set);
    return ordinal >= start && ordinal < start + replicas(set);
  }

  private static int start(StatefulSet set) {
    var ordinals = set.getSpec().getOrdinals();
    return ordinals == null || ordinals.getStart() == null ? 0 : ordinals.getStart();
  }

  private static int replicas(StatefulSet set) {
    return set.getSpec().getReplicas() == null ? 1 : set.getSpec().getReplicas();
  }

  private static boolean finished(Job job) {
    return job.getStatus() != null && job.getStatus().getConditions() != null && job.getStatus().getConditions().stream()
        .anyMatch(c -> ("Complete".equals(c.getType()) || "Failed".equals(c.getType())) && "True".equals(c.getStatus()));
  }
}
