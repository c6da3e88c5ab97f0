package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestoreStatus implements AttemptedStatus {
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
  /** Attempts the agent started so far; more than one when transient failures were retried (spec.backoffLimit). */
  public Integer attempts;
  /** When the agent tries again after the last transient failure (condition Retrying says why). */
  public String nextRetryTime;
  /** While Pending behind other work of its node's agent: 1 is next (reason WaitingForNodeSlot). */
  public Integer queuePosition;
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
    nextRetryTime = null;
    queuePosition = null;
    stopRetrying(reason, message, generation);
  }

  @Override
  public List<Condition> conditions() {
    return conditions;
  }

  @Override
  public int attempts() {
    return attempts == null ? 0 : attempts;
  }

  @Override
  public void startAttempt() {
    attempts = attempts() + 1;
    nextRetryTime = null;
    queuePosition = null;
    reason = null;
  }

  @Override
  public void waitForRetry(String reason, String message, String retryTime, Long generation) {
    this.reason = reason;
    this.message = message;
    nextRetryTime = retryTime;
    Conditions.set(this, Conditions.RETRYING, true, reason, message, generation);
  }

  @Override
  public void waitInQueue(int position, String message) {
    reason = WAITING_FOR_NODE_SLOT;
    this.message = message;
    queuePosition = position;
  }

  @Override
  public String nextRetryTime() {
    return nextRetryTime;
  }

  public RestorePhase phaseOrPending() {
    return phase != null ? phase : RestorePhase.Pending;
  }
}
