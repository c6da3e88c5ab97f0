package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestoreStatus implements ConditionedStatus {
  public RestorePhase phase;
  /** The Checkpoint being restored: spec.checkpointRef's, or the one chosen for spec.scheduleRef. */
  public String checkpoint;
  /** Node chosen to restore on. */
  public String node;
  /** Why that node: the placement decision, including every node that was rejected and why. */
  public PlacementStatus placement;
  public String startTime;
  public String completionTime;
  /** PID of the restored tree's root on the node. */
  public Integer restoredPid;
  /** Running while the restored tree runs under its agent; Exited once it ended. */
  public String processState;
  /** Pod checkpoints: the checkpoint image pushed for each container. */
  public List<CheckpointImageStatus> checkpointImages;
  /** Pod checkpoints: the Pod created from the stored pod spec with the checkpoint images. */
  public String restoredPod;
  public String reason;
  public String message;
  public String criuLogTail;
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  /** Ends in Failed the way every writer records a failure: phase, reason, message, time, conditions. */
  public void fail(String reason, String message, Long generation) {
    phase = RestorePhase.Failed;
    completionTime = Conditions.now();
    this.reason = reason;
    this.message = message;
    Conditions.set(this, Conditions.FAILED, true, reason, message, generation);
    Conditions.set(this, Conditions.COMPLETE, false, reason, message, generation);
  }

  @Override
  public List<Condition> conditions() {
    return conditions;
  }

  public RestorePhase phaseOrPending() {
    return phase != null ? phase : RestorePhase.Pending;
  }
}
