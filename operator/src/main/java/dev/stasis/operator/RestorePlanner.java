package dev.stasis.operator;

import static dev.stasis.operator.RestoreValidator.isPodCheckpoint;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeProfileIndex;
import dev.stasis.operator.placement.PlacementDecision;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The operator's part of a restore's pre-flight, which needs nothing of the target node: the
 * checkpoint's manifests read from its storage and checked against what its status recorded, a pod
 * checkpoint refused while its controller runs its work or identity, and the node chosen from the
 * NodeProfiles by what the manifest recorded (nodes whose agent is gone left out). A Restore runs it
 * before it is handed to an agent; a pod Migration runs it on its stored checkpoint before it
 * deletes the pod, so that a pod no node can take runs on untouched. The agent's own pre-flight
 * (CPU, paths on the node) follows on the node.
 */
final class RestorePlanner {
  /** The checkpoint's manifests (one per container of a pod checkpoint) and where the restore goes, if anywhere. */
  record Plan(List<RecordedManifest> manifests, PlacementDecision decision) {}

  private final ClusterCache cluster;
  private final StorageBinding storages;
  private final PodControllers controllers;
  private final AgentLoss agentLoss;
  private final NodeProfileIndex nodeProfiles = new NodeProfileIndex();

  /** @param agentLoss the reconciler's own: it knows agents by the heartbeats it has watched change */
  RestorePlanner(KubernetesClient client, ClusterCache cluster, StorageBinding storages, AgentLoss agentLoss) {
    this.cluster = cluster;
    this.storages = storages;
    this.controllers = new PodControllers(client);
    this.agentLoss = agentLoss;
  }

  /**
   * Where {@code restore} of the Completed {@code checkpoint} would go, by its spec.placement, on no
   * node of {@code excluded} (node → why) nor one whose agent is gone. An empty decision says why no
   * node can; a {@link Refusal} says why the checkpoint cannot be restored anywhere now.
   */
  Plan plan(Restore restore, Checkpoint checkpoint, Map<String, String> excluded) throws Refusal {
    List<RecordedManifest> manifests = manifests(checkpoint);
    if (isPodCheckpoint(checkpoint)) {
      controllers.requireRestorable(restore, manifests.get(0).manifest());
    }
    CheckpointNeeds needs = needsOf(manifests);
    List<NodeProfile> profiles = cluster.nodeProfiles();
    Map<String, String> notThere = agentLoss.goneAmong(profiles);
    notThere.putAll(excluded);
    PlacementDecision decision = nodeProfiles.placementOver(profiles).place(needs, restore.getSpec().placement, notThere);
    return new Plan(manifests, decision);
  }

  /** The checkpoint's manifests as its status recorded them: one per container of a pod checkpoint, or one. */
  List<RecordedManifest> manifests(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storageOf(checkpoint);
    List<String> containers = isPodCheckpoint(checkpoint)
        ? checkpoint.getStatus().containers.stream().map(c -> c.name).toList() : Collections.singletonList(null);
    try (ObjectStore store = storages.open(storage)) {
      List<RecordedManifest> manifests = new ArrayList<>();
      for (String container : containers) {
        manifests.add(RecordedManifest.read(store, checkpoint, container));
      }
      return manifests;
    } catch (StoredCheckpointException e) {
      throw new Refusal(e.reason(), e.getMessage());
    } catch (IOException e) {
      throw new Refusal("StorageUnavailable", "cannot read the checkpoint's manifest: " + e.getMessage());
    }
  }

  CheckpointStorage storageOf(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage
          + "' holding the checkpoint no longer exists");
    }
    return storage;
  }

  /** What the checkpoint needs from a node, as the agent recorded it in the manifest (a pod's containers share it). */
  private static CheckpointNeeds needsOf(List<RecordedManifest> manifests) throws Refusal {
    try {
      return CheckpointNeeds.of(manifests.get(0).manifest());
    } catch (IllegalArgumentException e) {
      throw new Refusal("ManifestInvalid", e.getMessage());
    }
  }
}
