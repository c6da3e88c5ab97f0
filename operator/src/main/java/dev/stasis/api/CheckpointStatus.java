package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStatus implements AttemptedStatus {
  public CheckpointPhase phase;
  /** Node whose agent does (or did) the work. */
  public String node;
  /** Storage the archive goes to, resolved from spec.storage or the default. */
  public String storage;
  public String startTime;
  public String completionTime;
  /** The archive of a process checkpoint, or of a pod checkpoint of exactly one container. */
  public ArchiveStatus archive;
  /** Pod checkpoints: each container checkpointed, with its own archive. */
  public List<ContainerCheckpointStatus> containers;
  public CheckpointStats stats;
  /** Attempts the agent started so far; more than one when transient failures were retried (spec.backoffLimit). */
  public Integer attempts;
  /** When the agent tries again after the last transient failure (condition Retrying says why). */
  public String nextRetryTime;
  /** While Pending behind other work of its node's agent: 1 is next (reason WaitingForNodeSlot). */
  public Integer queuePosition;
  /** Stable CamelCase reason of the last failure or the current state. */
  public String reason;
  public String message;
  /** The last lines of CRIU's log when CRIU failed. */
  public String criuLogTail;
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  /** Ends in Failed the way every writer records a failure: phase, reason, message, time, conditions. */
  public void fail(String reason, String message, Long generation) {
    phase = CheckpointPhase.Failed;
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

  public CheckpointPhase phaseOrPending() {
    return phase != null ? phase : CheckpointPhase.Pending;
  }
}
