package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestoreStatus extends AgentWorkStatus {
  public RestorePhase phase;
  /** The Checkpoint being restored: spec.checkpointRef's, or the one chosen for spec.scheduleRef. */
  public String checkpoint;
  /** Why the node was chosen: the placement decision, including every node that was rejected and why. */
  public PlacementStatus placement;
  /** PID of the restored tree's root on the node, for people: {@link #restoredProcess} is what may be acted on. */
  public Integer restoredPid;
  /**
   * The restored tree's root as an identity (PID, start ticks, boot id), as its agent found it right
   * after CRIU restored it; none when the tree had ended before. Whoever acts on the restored tree
   * later (a schedule following it) takes only this process, never another that got its PID.
   */
  public ProcessIdentity restoredProcess;
  /** Running while the restored tree runs under its agent; Exited once it ended. */
  public String processState;
  /** Pod checkpoints: the checkpoint image pushed for each container. */
  public List<CheckpointImageStatus> checkpointImages;
  /** Pod checkpoints: the Pod created from the stored pod spec with the checkpoint images. */
  public String restoredPod;

  @Override
  protected void phaseFailed() {
    phase = RestorePhase.Failed;
  }

  @Override
  protected String phaseName() {
    return phaseOrPending().name();
  }

  @Override
  protected Readiness.State stateOfPhase() {
    return switch (phaseOrPending()) {
      case Pending, Restoring -> Readiness.State.RECONCILING;
      case Completed -> Readiness.State.READY;
      case Failed -> Readiness.State.STALLED;
    };
  }

  public RestorePhase phaseOrPending() {
    return phase != null ? phase : RestorePhase.Pending;
  }
}
