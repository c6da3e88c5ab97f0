package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class MigrationStatus extends ObservedStatus {
  public MigrationPhase phase;
  /** The node the target ran on when the Migration began. */
  public String sourceNode;
  /** UID of the pod a pod target was when the Migration began: the one pod it deletes once the checkpoint is stored. */
  public String sourcePodUid;
  /** The node it was restored on (the source node when it was brought back there). */
  public String node;
  /** The Checkpoint it created (the same name as the Migration). */
  public String checkpoint;
  /** The Restore it created on another node. */
  public String restore;
  /** The Restore on the source node it created after {@link #restore} failed. */
  public String sourceRestore;
  /** PID of the restored tree's root on {@link #node} (process targets), for people. */
  public Integer restoredPid;
  /** The restored tree's root as an identity (its Restore's restoredProcess): what may be acted on. */
  public ProcessIdentity restoredProcess;
  /** The pod the workload runs in again on {@link #node} (pod targets). */
  public String restoredPod;
  /** Where the workload went when the Migration failed (only then). */
  public MigrationRecovery recovery;
  /** Why the target went where it did, or why no node could take it (NoCompatibleNode). */
  public PlacementStatus placement;
  /** The progress of the child that works now: the Checkpoint while Checkpointing, then the Restore. */
  public ProgressStatus progress;
  public String startTime;
  public String completionTime;
  /** From the Migration's creation to its end. */
  public Long totalSeconds;
  /**
   * From the checkpoint freezing the workload to the restored workload running: how long it did no
   * work (a pod runs on until its checkpoint is stored; what it does then is lost with the pod).
   */
  public Long frozenToRunningSeconds;
  public String reason;
  public String message;

  /** Completed is Ready, Failed Stalled with the failure's reason (whatever became of the workload); before, Reconciling. */
  @Override
  public Readiness readiness() {
    MigrationPhase now = phaseOrPending();
    String why = reason != null ? reason : now.name();
    String what = message != null ? message : now.name();
    return switch (now) {
      case Completed -> Readiness.ready(why, what);
      case Failed -> Readiness.stalled(why, what);
      default -> Readiness.reconciling(why, what);
    };
  }

  public MigrationPhase phaseOrPending() {
    return phase != null ? phase : MigrationPhase.Pending;
  }
}
