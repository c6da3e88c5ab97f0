package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestoreStatus;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RestoreLifecycle;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.LocalObjectReference;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The operator's part of restoring a pod checkpoint, once the agent pushed its checkpoint images:
 * a new Pod from the stored pod spec, pinned to the chosen node, each checkpointed container's
 * image replaced by its checkpoint image; then the Restore follows that Pod until it runs. A pod
 * that cannot run is deleted again, with the images, and the Restore fails with the pod's reason.
 */
final class PodRestores {
  /** Labels the restored Pod, so that a second pass finds the pod it created rather than another. */
  static final String RESTORE_UID = "stasis.dev/restore-uid";
  static final String CHECKPOINT_ANNOTATION = "stasis.dev/checkpoint";
  static final Duration POLL = Duration.ofSeconds(2);
  static final Duration START_TIMEOUT = Duration.ofMinutes(10);
  /** Container states from which the kubelet will not get the restored container running by itself. */
  private static final Set<String> HOPELESS = Set.of("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
      "InvalidImageName", "CreateContainerConfigError", "CrashLoopBackOff");
  /** Of those, the ones where the runtime itself refused to make the container from its checkpoint image. */
  private static final Set<String> RUNTIME_REFUSED = Set.of("CreateContainerError", "RunContainerError");

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final RestoreLifecycle lifecycle;
  private final PodControllers controllers;
  private final CheckpointImages images;

  PodRestores(KubernetesClient client, StorageBinding storages, RestoreLifecycle lifecycle,
      CheckpointImages images) {
    this.client = client;
    this.controllers = new PodControllers(client);
    this.images = images;
    this.storages = storages;
    this.lifecycle = lifecycle;
  }

  /** A Restore whose images are pushed: create its pod, or follow the pod it created. */
  UpdateControl<Restore> progress(Restore restore) {
    RestoreStatus status = restore.getStatus();
    try {
      if (status.restoredPod == null) {
        createPod(restore);
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(POLL);
      }
      Pod pod = client.pods().inNamespace(restore.getMetadata().getNamespace()).withName(status.restoredPod).get();
      if (pod == null) {
        throw new Refusal("RestoredPodDeleted", "pod " + status.restoredPod + " was deleted before it ran");
      }
      if ("Running".equals(pod.getStatus() == null ? null : pod.getStatus().getPhase())) {
        complete(restore, pod);
        return UpdateControl.noUpdate();
      }
      Optional<Refusal> failure = failure(pod);
      if (failure.isPresent()) {
        throw failure.get();
      }
      Instant created = Instant.parse(pod.getMetadata().getCreationTimestamp());
      if (Instant.now().isAfter(created.plus(START_TIMEOUT))) {
        throw new Refusal("RestoredPodTimeout", "pod " + pod.getMetadata().getName() + " did not run within "
            + START_TIMEOUT.toMinutes() + " minutes (phase " + pod.getStatus().getPhase() + ")");
      }
      return UpdateControl.<Restore>noUpdate().rescheduleAfter(POLL);
    } catch (Refusal refusal) {
      fail(restore, refusal);
      return UpdateControl.noUpdate();
    }
  }

  private void createPod(Restore restore) throws Refusal {
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.checkpointName()).get();
    if (checkpoint == null) {
      throw new Refusal("CheckpointNotFound", "Checkpoint '" + restore.checkpointName()
          + "' was deleted while it was restored");
    }
    Manifest manifest = podManifest(checkpoint);
    controllers.requireRestorable(restore, manifest); // again: the controller may have changed since placement
    Pod pod = restoredPod(restore, manifest);
    Pod created;
    try {
      created = client.resource(pod).create();
    } catch (KubernetesClientException e) {
      created = e.getCode() == 409 ? ours(restore, pod.getMetadata().getName()) : null;
      if (created == null && e.getCode() == 409 && leaving(restore, pod.getMetadata().getName())) {
        return; // a StatefulSet scaled down: its pod of that name is still being deleted
      }
      if (created == null) {
        throw new Refusal(e.getCode() == 409 ? "PodNameTaken" : "PodCreateFailed", "cannot create pod "
            + pod.getMetadata().getName() + ": " + (e.getStatus() != null ? e.getStatus().getMessage() : e.getMessage())
            + (e.getCode() == 409 ? "; choose another name in spec.pod.name" : ""));
      }
    }
    String name = created.getMetadata().getName();
    String message = "created pod " + name + " on node " + restore.getStatus().node + "; waiting for it to run";
    lifecycle.podCreated(restore, name, message);
  }

  /** Whether a pod of that name is being deleted, and the Restore may wait for it to go. */
  private boolean leaving(Restore restore, String name) {
    Pod existing = client.pods().inNamespace(restore.getMetadata().getNamespace()).withName(name).get();
    return existing != null && existing.getMetadata().getDeletionTimestamp() != null;
  }

  /** A pod of that name that this Restore created in an earlier pass, or null. */
  private Pod ours(Restore restore, String name) {
    Pod existing = client.pods().inNamespace(restore.getMetadata().getNamespace()).withName(name).get();
    Map<String, String> labels = existing == null ? null : existing.getMetadata().getLabels();
    return labels != null && restore.getMetadata().getUid().equals(labels.get(RESTORE_UID)) ? existing : null;
  }

  private Manifest podManifest(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage + "' is gone");
    }
    try (ObjectStore store = storages.open(storage)) {
      Manifest manifest = RecordedManifest.read(store, checkpoint, checkpoint.getStatus().containers.get(0).name)
          .manifest();
      if (manifest.source.podSpec == null) {
        throw new Refusal("ManifestInvalid", "the checkpoint's manifest holds no pod spec to restore");
      }
      return manifest;
    } catch (StoredCheckpointException e) {
      throw new Refusal(e.reason(), e.getMessage());
    } catch (IOException e) {
      throw new Refusal("StorageUnavailable", "cannot read the checkpoint's manifest: " + e.getMessage());
    }
  }

  /**
   * The stored pod, fresh: its labels (without its controller's, {@link PodControllers}) and
   * annotations, its spec bound to the chosen node with the checkpoint images; owned by the Restore
   * (the old controller must not adopt, delete or count it) and nothing the API server or the
   * kubelet set.
   */
  Pod restoredPod(Restore restore, Manifest manifest) {
    var source = manifest.source;
    PodSpec spec = Serialization.jsonMapper().convertValue(source.podSpec, PodSpec.class);
    spec.setNodeName(restore.getStatus().node);
    Map<String, String> images = new HashMap<>();
    restore.getStatus().checkpointImages.forEach(i -> images.put(i.container, i.image));
    spec.getContainers().forEach(c -> {
      if (images.containsKey(c.getName())) {
        c.setImage(images.get(c.getName()));
      }
    });
    var podSpec = restore.getSpec().pod;
    if (podSpec != null && podSpec.imagePullSecrets != null) {
      List<LocalObjectReference> secrets = spec.getImagePullSecrets() == null ? new ArrayList<>()
          : new ArrayList<>(spec.getImagePullSecrets());
      podSpec.imagePullSecrets.forEach(s -> secrets.add(new LocalObjectReference(s)));
      spec.setImagePullSecrets(secrets);
    }
    Map<String, String> labels = controllers.labels(restore, manifest);
    labels.put(RESTORE_UID, restore.getMetadata().getUid());
    Map<String, String> annotations = source.podAnnotations == null ? new HashMap<>() : new HashMap<>(source.podAnnotations);
    annotations.put(CHECKPOINT_ANNOTATION, restore.checkpointName());
    Pod pod = new Pod();
    pod.setMetadata(new ObjectMetaBuilder().withName(PodControllers.name(restore, manifest))
        .withNamespace(restore.getMetadata().getNamespace()).withLabels(labels).withAnnotations(annotations)
        .withOwnerReferences(PodControllers.owner(restore)).build());
    pod.setSpec(spec);
    return pod;
  }

  /**
   * Why the pod will not run, in the kubelet's and the runtime's words, if it will not: the runtime
   * could not restore a container from its checkpoint image (RuntimeCannotRestore, with what to
   * change on the node), or the pod failed otherwise (RestoredPodFailed).
   */
  Optional<Refusal> failure(Pod pod) {
    var status = pod.getStatus();
    if (status == null) {
      return Optional.empty();
    }
    String name = pod.getMetadata().getName();
    String node = pod.getSpec().getNodeName();
    if ("Failed".equals(status.getPhase())) {
      return Optional.of(podFailed(name, node, status.getReason() + ": " + status.getMessage()));
    }
    List<ContainerStatus> containers = status.getContainerStatuses() == null ? List.of() : status.getContainerStatuses();
    for (ContainerStatus c : containers) {
      var state = c.getState();
      var waiting = state == null ? null : state.getWaiting();
      if (waiting != null && RUNTIME_REFUSED.contains(waiting.getReason())) {
        return Optional.of(new Refusal("RuntimeCannotRestore", "the container runtime of node " + node
            + " could not restore container " + c.getName() + " of pod " + name + " from its checkpoint image: "
            + waiting.getReason() + ": " + waiting.getMessage() + ". " + whatToChange(node, waiting.getMessage())));
      }
      if (waiting != null && HOPELESS.contains(waiting.getReason())) {
        return Optional.of(podFailed(name, node, "container " + c.getName() + ": " + waiting.getReason() + ": "
            + waiting.getMessage()));
      }
      if (state != null && state.getTerminated() != null) {
        return Optional.of(podFailed(name, node, "container " + c.getName() + " ended: "
            + state.getTerminated().getReason() + " (exit code " + state.getTerminated().getExitCode() + ")"));
      }
    }
    return Optional.empty();
  }

  private static Refusal podFailed(String pod, String node, String why) {
    return new Refusal("RestoredPodFailed", "pod " + pod + " on node " + node + " cannot run: " + why
        + "; the node must be able to pull the checkpoint images from the registry (spec.pod.imagePullSecrets)");
  }

  /** What to change so that the runtime restores, from its words and the node's profile. */
  private String whatToChange(String node, String runtimeSaid) {
    String said = runtimeSaid == null ? "" : runtimeSaid;
    if (said.contains("checkpoint base image")) {
      return "containerd pulls the image the checkpoint was based on again when it restores, from its registry and"
          + " without the pod's imagePullSecrets: keep that image pullable from node " + node;
    }
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    var runtime = profile == null || profile.getSpec() == null ? null : profile.getSpec().runtime;
    var restore = runtime == null ? null : runtime.restore;
    String agentSaid = restore != null && restore.restores() ? "; the node's agent said it restores (" + restore.source
        + ": " + restore.message + ")" + (NodeProfileSpec.RuntimeRestore.FROM_AGENT_FLAG.equals(restore.source)
            ? ": correct the agent's --runtime-restore" : "") : "";
    if (said.contains("disabled by configuration")) {
      return "Turn restores from checkpoint images on in containerd on node " + node + ": "
          + "enable_experimental_restore_via_create = true (and no enable_criu = false) in [plugins.\""
          + "io.containerd.cri.v1.runtime\"] of its configuration, then restart it" + agentSaid;
    }
    if (said.contains("no command specified")) {
      return "CRI-O on node " + node + " took the checkpoint image for a plain image, as it does when its restores are"
          + " off: set container_level_enabled = \"checkpoint_restore\" in [crio.checkpoint_restore] of its"
          + " configuration and restart it" + agentSaid;
    }
    return "The runtime's log on node " + node + " says more"
        + (runtime == null ? "" : " (" + runtime.name + (runtime.version == null ? "" : " " + runtime.version) + ")")
        + "; restore on a node whose runtime is the one that took the checkpoint (spec.placement.nodeName)";
  }

  private void complete(Restore restore, Pod pod) {
    String message = "restored as pod " + pod.getMetadata().getName() + " on node " + pod.getSpec().getNodeName();
    lifecycle.completePod(restore, message);
  }

  /** Nothing half-done stays: the pod this Restore created and the images pushed for it go. */
  private void fail(Restore restore, Refusal refusal) {
    RestoreStatus status = restore.getStatus();
    if (status.restoredPod != null) {
      Pod pod = ours(restore, status.restoredPod);
      if (pod != null) {
        client.resource(pod).delete();
      }
    }
    images.delete(restore, "the restore failed (" + refusal.reason() + ")");
    lifecycle.failPod(restore, refusal.reason(), refusal.getMessage());
  }
}
