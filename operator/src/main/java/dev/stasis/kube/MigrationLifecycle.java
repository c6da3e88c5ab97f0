package dev.stasis.kube;

import dev.stasis.api.Conditions;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationRecovery;
import dev.stasis.api.MigrationStatus;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.RestoreStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;
import java.time.Instant;
import java.util.function.Consumer;

/**
 * Every way a Migration's status moves (docs/lifecycles.md has the table). Only the operator moves
 * it, from what its children say: Pending → Checkpointing (its Checkpoint is taken; the workload is
 * ended only once the archive is stored) → Restoring (its Restore runs on another node; when that
 * fails, a Restore on the source node) → Completed or Failed. Each transition checks the phase it
 * starts from on the copy it was decided on and is written only if nobody wrote since
 * ({@link StatusWriter#replace}); it records its Event, and one that ends the Migration tells
 * {@code finished} (the metrics). Nobody moves a Completed or Failed Migration.
 */
public final class MigrationLifecycle {
  private final KubernetesClient client;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Consumer<MigrationStatus> finished;

  /** @param finished told of every Migration that ended (the operator's metrics) */
  public MigrationLifecycle(KubernetesClient client, EventRecorder events, Consumer<MigrationStatus> finished) {
    this.client = client;
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.finished = finished;
  }

  /**
   * refuse: Pending → Failed before anything was touched (an invalid spec, no node to go to, a
   * child's name taken). The workload runs on where it is.
   */
  public Migration refuse(Migration observed, String reason, String message, PlacementStatus placement) {
    MigrationStatus status = next(observed, MigrationPhase.Pending);
    status.placement = placement;
    status.recovery = MigrationRecovery.SourceRunning;
    return failed(observed, status, reason, message + ". Nothing was stopped: the workload runs on where it is");
  }

  /**
   * checkpointing: Pending → Checkpointing, its Checkpoint of the target on {@code sourceNode}
   * created; {@code sourcePodUid}: the pod of a pod target, null for a process tree.
   */
  public Migration checkpointing(Migration observed, String sourceNode, String sourcePodUid, String checkpoint,
      PlacementStatus placement) {
    MigrationStatus status = next(observed, MigrationPhase.Pending);
    status.phase = MigrationPhase.Checkpointing;
    status.sourceNode = sourceNode;
    status.sourcePodUid = sourcePodUid;
    status.checkpoint = checkpoint;
    status.placement = placement;
    status.startTime = Conditions.now();
    String message = "checkpointing the target on node " + sourceNode + " (Checkpoint " + checkpoint
        + "); it is ended once its archive is stored" + (sourcePodUid == null ? "" : " (its pod deleted)");
    return moved(observed, status, "Checkpointing", message);
  }

  /**
   * checkpoint failed: Checkpointing → Failed. {@code recovery} says where the workload is: running
   * on the source (the agent resumed what it stopped) or, when the source's agent was lost, unknown.
   */
  public Migration checkpointFailed(Migration observed, String reason, String message, MigrationRecovery recovery) {
    MigrationStatus status = next(observed, MigrationPhase.Checkpointing);
    status.recovery = recovery;
    return failed(observed, status, reason, message);
  }

  /**
   * not placed: Checkpointing → Failed, a pod's checkpoint stored but no node can take it (the
   * restore's pre-flight, run before the pod is deleted). The pod was not touched and runs on.
   */
  public Migration notPlaced(Migration observed, String reason, String message, PlacementStatus placement) {
    MigrationStatus status = next(observed, MigrationPhase.Checkpointing);
    status.placement = placement != null ? placement : status.placement;
    status.recovery = MigrationRecovery.SourceRunning;
    return failed(observed, status, reason, message + ". Pod " + observed.getSpec().target.pod.name
        + " was not deleted and runs on on node " + status.sourceNode);
  }

  /**
   * restoring: Checkpointing → Restoring: the checkpoint is stored (the source ended: its tree
   * killed, or its pod deleted and gone), its Restore created.
   */
  public Migration restoring(Migration observed, String restore) {
    MigrationStatus status = next(observed, MigrationPhase.Checkpointing);
    status.phase = MigrationPhase.Restoring;
    status.restore = restore;
    status.progress = null; // the Restore's own, once it moves
    return moved(observed, status, "Restoring", "checkpoint " + status.checkpoint + " stored and the workload ended on"
        + " node " + status.sourceNode + (status.sourcePodUid == null ? "" : " (its pod deleted)")
        + "; restoring it elsewhere (Restore " + restore + ")");
  }

  /**
   * restoring on the source: Restoring → Restoring: the Restore elsewhere failed ({@code reason}),
   * so the checkpoint is restored on the source node ({@code sourceRestore}).
   */
  public Migration restoringOnSource(Migration observed, String sourceRestore, String reason, String message) {
    MigrationStatus status = next(observed, MigrationPhase.Restoring);
    if (status.sourceRestore != null) {
      throw new IllegalStateException("migration " + observed.getMetadata().getName() + " restores on its source already");
    }
    status.sourceRestore = sourceRestore;
    status.recovery = MigrationRecovery.RestoringOnSource;
    status.progress = null;
    status.reason = reason;
    status.message = message + "; restoring the workload on its source node " + status.sourceNode + " (Restore "
        + sourceRestore + ")";
    Conditions.set(status, Conditions.COMPLETE, false, reason, status.message, observed.getMetadata().getGeneration());
    Migration written = statusWriter.replace(observed, status);
    events.warning(observed, "RestoringOnSource", status.message);
    return written;
  }

  /**
   * complete: Restoring → Completed: the workload runs where {@code restored} says (its node, and
   * the PID of a process tree or the pod of a pod target), {@code frozenToRunning} after the
   * checkpoint froze it.
   */
  public Migration complete(Migration observed, RestoreStatus restored, Duration frozenToRunning) {
    MigrationStatus status = next(observed, MigrationPhase.Restoring);
    if (status.sourceRestore != null) {
      throw new IllegalStateException("migration " + observed.getMetadata().getName()
          + " was brought back to its source: it failed, it did not complete");
    }
    status.phase = MigrationPhase.Completed;
    restoredAt(status, restored);
    if (status.progress != null) {
      status.progress = status.progress.finished();
    }
    ended(observed, status, frozenToRunning);
    status.reason = "Migrated";
    status.message = "moved from node " + status.sourceNode + " to node " + status.node + where(status)
        + "; it did no work for " + status.frozenToRunningSeconds + "s, from its checkpoint to running again";
    Conditions.set(status, Conditions.COMPLETE, true, status.reason, status.message, observed.getMetadata().getGeneration());
    Conditions.set(status, Conditions.FAILED, false, status.reason, status.message, observed.getMetadata().getGeneration());
    Migration written = statusWriter.replace(observed, status);
    events.normal(observed, status.reason, status.message);
    finished.accept(status);
    return written;
  }

  /**
   * restore failed: Restoring → Failed, the move did not happen. {@code recovery}: the workload runs
   * again on the source ({@code RestoredOnSource}: {@code restored} says where), or nowhere Stasis
   * knows of ({@code restored} null). The reason stays the one the restore elsewhere failed with.
   */
  public Migration restoreFailed(Migration observed, String reason, String message, MigrationRecovery recovery,
      RestoreStatus restored, Duration frozenToRunning) {
    MigrationStatus status = next(observed, MigrationPhase.Restoring);
    status.recovery = recovery;
    restoredAt(status, restored);
    ended(observed, status, frozenToRunning);
    return failed(observed, status, reason, message);
  }

  /**
   * progress: Checkpointing or Restoring → the same phase, showing the progress of the child that
   * works now; written only when it differs from what the status shows (children write theirs at
   * most every few seconds, so this does too).
   */
  public Migration progress(Migration observed, ProgressStatus progress) {
    MigrationStatus status = next(observed, observed.getStatus().phaseOrPending());
    if (progress == null || progress.sameAs(status.progress)) {
      return observed;
    }
    status.progress = progress;
    return statusWriter.replace(observed, status);
  }

  private static void restoredAt(MigrationStatus status, RestoreStatus restored) {
    status.node = restored == null ? null : restored.node;
    status.restoredPid = restored == null ? null : restored.restoredPid;
    status.restoredProcess = restored == null ? null : restored.restoredProcess;
    status.restoredPod = restored == null ? null : restored.restoredPod;
  }

  private static String where(MigrationStatus status) {
    return status.restoredPid != null ? " (PID " + status.restoredPid + ")"
        : status.restoredPod != null ? " (pod " + status.restoredPod + ")" : "";
  }

  /** A copy of the observed status to move on from, after checking the phase it is in. */
  private MigrationStatus next(Migration observed, MigrationPhase from) {
    MigrationStatus current = observed.getStatus();
    MigrationPhase phase = current == null ? MigrationPhase.Pending : current.phaseOrPending();
    if (phase != from) {
      throw new IllegalStateException("migration " + observed.getMetadata().getName() + " is " + phase + ", not " + from);
    }
    MigrationStatus status = current == null ? new MigrationStatus() : client.getKubernetesSerialization().clone(current);
    status.phase = from;
    status.observedGeneration = observed.getMetadata().getGeneration();
    return status;
  }

  private Migration moved(Migration observed, MigrationStatus status, String reason, String message) {
    status.reason = reason;
    status.message = message;
    Conditions.set(status, Conditions.COMPLETE, false, reason, message, observed.getMetadata().getGeneration());
    Migration written = statusWriter.replace(observed, status);
    events.normal(observed, reason, message);
    return written;
  }

  private Migration failed(Migration observed, MigrationStatus status, String reason, String message) {
    Long generation = observed.getMetadata().getGeneration();
    status.phase = MigrationPhase.Failed;
    if (status.completionTime == null) {
      ended(observed, status, null);
    }
    status.reason = reason;
    status.message = message;
    Conditions.set(status, Conditions.FAILED, true, reason, message, generation);
    Conditions.set(status, Conditions.COMPLETE, false, reason, message, generation);
    Migration written = statusWriter.replace(observed, status);
    events.warning(observed, reason, message);
    finished.accept(status);
    return written;
  }

  private static void ended(Migration observed, MigrationStatus status, Duration frozenToRunning) {
    status.completionTime = Conditions.now();
    String created = observed.getMetadata().getCreationTimestamp();
    if (created != null) {
      status.totalSeconds = Duration.between(Instant.parse(created), Instant.parse(status.completionTime)).toSeconds();
    }
    status.frozenToRunningSeconds = frozenToRunning == null ? null : frozenToRunning.toSeconds();
  }
}
