package dev.stasis.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.placement.Placement;
import dev.stasis.operator.placement.PlacementDecision;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.time.Duration;

/**
 * Checks that a Restore names a Completed Checkpoint of its own namespace, picks the node to
 * restore on from the NodeProfiles, and hands the Restore to that node's agent.
 */
@ControllerConfiguration(name = "restore", generationAwareEventProcessing = false)
public class RestoreReconciler implements Reconciler<Restore> {
  private static final Duration CHECKPOINT_POLL = Duration.ofSeconds(5);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;

  public RestoreReconciler(KubernetesClient client, EventRecorder events) {
    this.client = client;
    this.storages = new StorageBinding(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore restore, Context<Restore> context) {
    RestoreStatus observed = restore.getStatus();
    if (observed != null && observed.phase != null && observed.phase != RestorePhase.Pending) {
      return UpdateControl.noUpdate();
    }
    if (observed != null && observed.node != null && observed.node.equals(Labels.node(restore))) {
      return UpdateControl.noUpdate();
    }
    try {
      Checkpoint checkpoint = completedCheckpoint(restore);
      if (checkpoint == null) {
        waitFor(restore);
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(CHECKPOINT_POLL);
      }
      NodeProfileSpec source = sourceProfile(checkpoint);
      PlacementDecision decision = Placement.place(checkpoint.getStatus().node, source,
          client.resources(NodeProfile.class).list().getItems(),
          restore.getSpec().placement == null ? null : restore.getSpec().placement.nodeName);
      if (decision.node().isEmpty()) {
        throw new Refusal("NoCompatibleNode", decision.summary());
      }
      assign(restore, decision);
    } catch (Refusal refusal) {
      fail(restore, refusal);
    }
    return UpdateControl.noUpdate();
  }

  /** The named Checkpoint once Completed; null while it is still being taken. */
  private Checkpoint completedCheckpoint(Restore restore) throws Refusal {
    var spec = restore.getSpec();
    String namespace = restore.getMetadata().getNamespace();
    if (spec == null || spec.checkpointRef == null || spec.checkpointRef.name == null) {
      throw new Refusal("InvalidCheckpointRef", "spec.checkpointRef.name is required: the Checkpoint to restore");
    }
    if (spec.checkpointRef.namespace != null && !spec.checkpointRef.namespace.equals(namespace)) {
      throw new Refusal("CrossNamespaceCheckpoint", "a Restore may only use Checkpoints of its own namespace ("
          + namespace + "), not of " + spec.checkpointRef.namespace
          + ": create the Restore in that namespace instead");
    }
    Checkpoint checkpoint =
        client.resources(Checkpoint.class).inNamespace(namespace).withName(spec.checkpointRef.name).get();
    if (checkpoint == null) {
      throw new Refusal("CheckpointNotFound", "Checkpoint '" + spec.checkpointRef.name + "' does not exist in namespace "
          + namespace + ": fix spec.checkpointRef.name (kubectl get ckpt -n " + namespace + ")");
    }
    CheckpointPhase phase = checkpoint.getStatus() == null ? CheckpointPhase.Pending : checkpoint.getStatus().phaseOrPending();
    if (phase == CheckpointPhase.Failed) {
      throw new Refusal("CheckpointNotCompleted", "Checkpoint '" + spec.checkpointRef.name
          + "' failed (" + checkpoint.getStatus().reason + ") and has no archive to restore: restore another checkpoint");
    }
    if (checkpoint.getSpec() != null && checkpoint.getSpec().target != null && checkpoint.getSpec().target.pod != null) {
      throw new Refusal("PodRestoreNotSupported", "restoring pod checkpoints is not supported by this version of Stasis yet");
    }
    return phase == CheckpointPhase.Completed ? checkpoint : null;
  }

  /** The source node's fingerprint, as the agent recorded it in the manifest. */
  private NodeProfileSpec sourceProfile(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage
          + "' holding the checkpoint no longer exists");
    }
    String key = new ArchiveLayout(checkpoint.getMetadata().getNamespace(),
        checkpoint.getMetadata().getName(), checkpoint.getMetadata().getUid()).manifestKey();
    try (ObjectStore store = storages.open(storage)) {
      Manifest manifest = Manifest.fromJson(store.read(key));
      return manifest.nodeProfile == null
          ? new NodeProfileSpec()
          : JSON.convertValue(manifest.nodeProfile, NodeProfileSpec.class);
    } catch (ObjectNotFoundException e) {
      throw new Refusal("ManifestMissing", "the checkpoint's manifest " + e.getMessage()
          + " is gone: the archive was deleted or never committed; take a new checkpoint");
    } catch (ManifestException e) {
      throw new Refusal("ManifestInvalid", e.getMessage());
    } catch (IOException e) {
      throw new Refusal("StorageUnavailable", "cannot read the checkpoint's manifest: " + e.getMessage());
    }
  }

  private void waitFor(Restore restore) {
    RestoreStatus status = new RestoreStatus();
    status.phase = RestorePhase.Pending;
    status.reason = "CheckpointInProgress";
    status.message = "waiting for Checkpoint '" + restore.getSpec().checkpointRef.name + "' to complete";
    status.observedGeneration = restore.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, status.reason, status.message, status.observedGeneration);
    statusWriter.replace(restore, status);
  }

  private void assign(Restore restore, PlacementDecision decision) {
    String node = decision.node().orElseThrow();
    restore = Labels.assign(client, restore, node);
    RestoreStatus status = new RestoreStatus();
    status.phase = RestorePhase.Pending;
    status.node = node;
    status.placement = decision.summary();
    status.message = "waiting for the agent on node " + node;
    status.observedGeneration = restore.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, "Pending", status.message, status.observedGeneration);
    statusWriter.replace(restore, status);
    events.normal(restore, "Placed", "restoring on node " + decision.summary());
  }

  private void fail(Restore restore, Refusal refusal) {
    RestoreStatus status = new RestoreStatus();
    status.phase = RestorePhase.Failed;
    status.reason = refusal.reason();
    status.message = refusal.getMessage();
    status.completionTime = Conditions.now();
    status.observedGeneration = restore.getMetadata().getGeneration();
    Conditions.set(status, Conditions.FAILED, true, refusal.reason(), refusal.getMessage(), status.observedGeneration);
    Conditions.set(status, Conditions.COMPLETE, false, refusal.reason(), refusal.getMessage(), status.observedGeneration);
    statusWriter.replace(restore, status);
    events.warning(restore, refusal.reason(), refusal.getMessage());
    StasisMetrics.restoreFinished(status);
  }
}
