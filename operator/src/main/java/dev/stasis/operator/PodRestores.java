package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.archive.Manifest;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryException;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
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
      "InvalidImageName", "CreateContainerError", "CreateContainerConfigError", "RunContainerError", "CrashLoopBackOff");

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;

  PodRestores(KubernetesClient client, StorageBinding storages, StatusWriter statusWriter, EventRecorder events) {
    this.client = client;
    this.storages = storages;
    this.statusWriter = statusWriter;
    this.events = events;
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
      Optional<String> failure = failure(pod);
      if (failure.isPresent()) {
        throw new Refusal("RestoredPodFailed", "pod " + pod.getMetadata().getName() + " on node "
            + pod.getSpec().getNodeName() + " cannot run: " + failure.get()
            + "; the node's runtime must restore from checkpoint images (CRI-O 1.25+ with enable_criu_support, or "
            + "containerd 2.1+) and be able to pull from the registry, the image the checkpoint was based on included");
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
    Pod pod = restoredPod(restore, manifest);
    Pod created;
    try {
      created = client.resource(pod).create();
    } catch (KubernetesClientException e) {
      created = e.getCode() == 409 ? ours(restore, pod.getMetadata().getName()) : null;
      if (created == null) {
        throw new Refusal(e.getCode() == 409 ? "PodNameTaken" : "PodCreateFailed", "cannot create pod "
            + pod.getMetadata().getName() + ": " + (e.getStatus() != null ? e.getStatus().getMessage() : e.getMessage())
            + (e.getCode() == 409 ? "; choose another name in spec.pod.name" : ""));
      }
    }
    String name = created.getMetadata().getName();
    String message = "created pod " + name + " on node " + restore.getStatus().node + "; waiting for it to run";
    statusWriter.update(restore, PodRestores::isRestoring, r -> {
      r.getStatus().restoredPod = name;
      r.getStatus().reason = "PodCreated";
      r.getStatus().message = message;
    }).ifPresent(r -> events.normal(r, "PodCreated", message));
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
   * The stored pod, fresh: its labels and annotations, its spec bound to the chosen node with the
   * checkpoint images; no owner references (a ReplicaSet must not adopt or delete it behind the
   * Restore's back) and nothing the API server or the kubelet set.
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
    Map<String, String> labels = source.podLabels == null ? new HashMap<>() : new HashMap<>(source.podLabels);
    labels.put(RESTORE_UID, restore.getMetadata().getUid());
    Map<String, String> annotations = source.podAnnotations == null ? new HashMap<>() : new HashMap<>(source.podAnnotations);
    annotations.put(CHECKPOINT_ANNOTATION, restore.checkpointName());
    String name = podSpec != null && podSpec.name != null && !podSpec.name.isBlank() ? podSpec.name
        : source.podName + "-" + restore.getMetadata().getUid().substring(0, 5);
    Pod pod = new Pod();
    pod.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(restore.getMetadata().getNamespace())
        .withLabels(labels).withAnnotations(annotations).build());
    pod.setSpec(spec);
    return pod;
  }

  /** Why the pod will not run, in the kubelet's words, if it will not. */
  static Optional<String> failure(Pod pod) {
    var status = pod.getStatus();
    if (status == null) {
      return Optional.empty();
    }
    if ("Failed".equals(status.getPhase())) {
      return Optional.of(status.getReason() + ": " + status.getMessage());
    }
    List<ContainerStatus> containers = status.getContainerStatuses() == null ? List.of() : status.getContainerStatuses();
    for (ContainerStatus c : containers) {
      var state = c.getState();
      if (state != null && state.getWaiting() != null && HOPELESS.contains(state.getWaiting().getReason())) {
        return Optional.of("container " + c.getName() + ": " + state.getWaiting().getReason() + ": "
            + state.getWaiting().getMessage());
      }
      if (state != null && state.getTerminated() != null) {
        return Optional.of("container " + c.getName() + " ended: " + state.getTerminated().getReason()
            + " (exit code " + state.getTerminated().getExitCode() + ")");
      }
    }
    return Optional.empty();
  }

  private static boolean isRestoring(Restore r) {
    return r.getStatus() != null && r.getStatus().phase == RestorePhase.Restoring;
  }

  private void complete(Restore restore, Pod pod) {
    String message = "restored as pod " + pod.getMetadata().getName() + " on node " + pod.getSpec().getNodeName();
    statusWriter.update(restore, PodRestores::isRestoring, r -> {
      RestoreStatus s = r.getStatus();
      s.phase = RestorePhase.Completed;
      s.completionTime = Conditions.now();
      s.reason = "Restored";
      s.message = message;
      Conditions.set(s, Conditions.COMPLETE, true, "Restored", message, r.getMetadata().getGeneration());
    }).ifPresent(done -> events.normal(done, "Restored", message));
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
    deleteImages(restore);
    statusWriter.update(restore, PodRestores::isRestoring,
        r -> r.getStatus().fail(refusal.reason(), refusal.getMessage(), r.getMetadata().getGeneration()))
        .ifPresent(failed -> events.warning(failed, refusal.reason(), refusal.getMessage()));
  }

  private void deleteImages(Restore restore) {
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.checkpointName()).get();
    CheckpointStorage storage = checkpoint == null ? null : storages.find(checkpoint.getStatus().storage);
    for (CheckpointImageStatus image : restore.getStatus().checkpointImages) {
      try {
        if (storage == null) {
          throw new StorageUnavailableException("the checkpoint or its storage is gone");
        }
        Registry registry = storages.registry(storage);
        CheckpointImage.delete(registry, image.image);
      } catch (RegistryException | StorageUnavailableException e) {
        events.warning(restore, "ImageNotDeleted", "could not delete the checkpoint image " + image.image + ": "
            + e.getMessage());
      }
    }
  }
}
