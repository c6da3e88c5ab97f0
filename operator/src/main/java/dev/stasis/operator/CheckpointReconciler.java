package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProcessTarget;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.ProcessTargetPolicy;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Validates a Checkpoint and hands it to the agent of its node (label {@value Labels#NODE}). From
 * then on the agent owns the status; the operator only cleans up the archive on deletion.
 */
@ControllerConfiguration(name = "checkpoint", generationAwareEventProcessing = false)
public class CheckpointReconciler implements Reconciler<Checkpoint>, Cleaner<Checkpoint> {
  private static final Logger log = LoggerFactory.getLogger(CheckpointReconciler.class);
  private static final Duration CLEANUP_RETRY = Duration.ofSeconds(30);

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final ProcessTargetPolicy processTargets;

  public CheckpointReconciler(KubernetesClient client, EventRecorder events, ProcessTargetPolicy processTargets) {
    this.client = client;
    this.processTargets = processTargets;
    this.storages = new StorageBinding(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus observed = checkpoint.getStatus();
    if (observed != null && observed.phase != null && observed.phase != CheckpointPhase.Pending) {
      return UpdateControl.noUpdate(); // the agent's now, or finished
    }
    if (isAssigned(checkpoint)) {
      return UpdateControl.noUpdate();
    }
    try {
      ProcessTarget target = validate(checkpoint);
      CheckpointStorage storage = usableStorage(checkpoint);
      assign(checkpoint, target.node, storage.getMetadata().getName());
    } catch (Refusal refusal) {
      fail(checkpoint, refusal);
    }
    return UpdateControl.noUpdate();
  }

  private static boolean isAssigned(Checkpoint checkpoint) {
    CheckpointStatus status = checkpoint.getStatus();
    return status != null && status.node != null
        && status.node.equals(Labels.node(checkpoint));
  }

  /** The CRD schema checks the same; this guards clusters where it was bypassed. */
  private ProcessTarget validate(Checkpoint checkpoint) throws Refusal {
    var spec = checkpoint.getSpec();
    if (spec == null || spec.target == null || (spec.target.process == null) == (spec.target.pod == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of spec.target.process (a process tree on a node) or spec.target.pod");
    }
    if (spec.target.pod != null) {
      throw new Refusal("PodTargetNotSupported",
          "pod targets are not supported by this version of Stasis yet; checkpoint the pod's process with spec.target.process");
    }
    ProcessTarget process = spec.target.process;
    var refusal = processTargets.refusal(checkpoint.getMetadata().getNamespace());
    if (refusal.isPresent()) {
      throw new Refusal("ProcessTargetNotAllowed", refusal.get());
    }
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", "spec.target.process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid",
          "spec.target.process.pid must be the PID of a workload process (2 or more), got " + process.pid);
    }
    if (client.resources(NodeProfile.class).withName(process.node).get() == null) {
      throw new Refusal("NodeNotFound",
          "no Stasis agent runs on node '" + process.node + "' (there is no NodeProfile of that name): "
              + "check the node name (kubectl get nodeprof) and that the agent runs there");
    }
    return process;
  }

  private CheckpointStorage usableStorage(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage;
    try {
      storage = storages.resolve(checkpoint.getSpec().storage);
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageNotFound", e.getMessage());
    }
    CheckpointStorageStatus status = storage.getStatus();
    if (status != null && CheckpointStorageStatus.UNAVAILABLE.equals(status.phase)) {
      throw new Refusal("StorageUnavailable", "CheckpointStorage '" + storage.getMetadata().getName()
          + "' is unavailable: " + status.message);
    }
    return storage;
  }

  private void assign(Checkpoint checkpoint, String node, String storage) {
    checkpoint = Labels.assign(client, checkpoint, node);
    CheckpointStatus status = new CheckpointStatus();
    status.phase = CheckpointPhase.Pending;
    status.node = node;
    status.storage = storage;
    status.message = "waiting for the agent on node " + node;
    status.observedGeneration = checkpoint.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, "Pending", status.message, status.observedGeneration);
    statusWriter.replace(checkpoint, status);
    events.normal(checkpoint, "Assigned", "assigned to the agent on node " + node + ", storage " + storage);
  }

  private void fail(Checkpoint checkpoint, Refusal refusal) {
    CheckpointStatus status = new CheckpointStatus();
    status.phase = CheckpointPhase.Failed;
    status.reason = refusal.reason();
    status.message = refusal.getMessage();
    status.completionTime = Conditions.now();
    status.observedGeneration = checkpoint.getMetadata().getGeneration();
    Conditions.set(status, Conditions.FAILED, true, refusal.reason(), refusal.getMessage(), status.observedGeneration);
    Conditions.set(status, Conditions.COMPLETE, false, refusal.reason(), refusal.getMessage(), status.observedGeneration);
    statusWriter.replace(checkpoint, status);
    events.warning(checkpoint, refusal.reason(), refusal.getMessage());
    StasisMetrics.checkpointFinished(status);
  }

  /** Deletes the stored archive with the resource, unless spec.retainArchive says to keep it. */
  @Override
  public DeleteControl cleanup(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus status = checkpoint.getStatus();
    boolean retain = checkpoint.getSpec() != null && Boolean.TRUE.equals(checkpoint.getSpec().retainArchive);
    if (retain || status == null || status.storage == null) {
      return DeleteControl.defaultDelete();
    }
    CheckpointStorage storage = storages.find(status.storage);
    if (storage == null) {
      events.warning(checkpoint, "ArchiveNotDeleted", "CheckpointStorage '" + status.storage
          + "' no longer exists; the archive (if any) was left where it was");
      return DeleteControl.defaultDelete();
    }
    String prefix = new ArchiveLayout(checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(),
        checkpoint.getMetadata().getUid()).prefix();
    try (ObjectStore store = storages.open(storage)) {
      store.deleteAll(prefix);
      log.info("deleted archive {} of checkpoint {}/{}", store.uri(prefix),
          checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName());
      return DeleteControl.defaultDelete();
    } catch (IOException e) {
      events.warning(checkpoint, "ArchiveDeleteFailed",
          "could not delete the archive yet, retrying in " + CLEANUP_RETRY.toSeconds() + "s: " + e.getMessage());
      return DeleteControl.noFinalizerRemoval().rescheduleAfter(CLEANUP_RETRY);
    }
  }
}
