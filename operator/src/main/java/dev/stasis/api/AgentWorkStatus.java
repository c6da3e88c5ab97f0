package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;

/**
 * What the statuses of a node agent's work (Checkpoint, Restore) share: where and when it ran, its
 * attempts and place in the node's queue, and how it ended.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public abstract class AgentWorkStatus extends ObservedStatus implements AttemptedStatus {
  /** Node whose agent does (or did) the work. */
  public String node;
  /**
   * What the operator gives that node's agent for this work (storage credentials, the keys of its
   * archives), sealed to the key the agent published in its NodeProfile: only that agent opens it.
   */
  public SealedGrant grant;
  public String startTime;
  public String completionTime;
  /** Attempts the agent started so far; more than one when transient failures were retried (spec.backoffLimit). */
  public Integer attempts;
  /** When the agent tries again after the last transient failure (condition Retrying says why). */
  public String nextRetryTime;
  /** While Pending behind other work of its node's agent: 1 is next (reason WaitingForNodeSlot). */
  public Integer queuePosition;
  /** How far the agent's work has come; the last progress stays when the work ends. */
  public ProgressStatus progress;
  /** Stable CamelCase reason of the last failure or the current state. */
  public String reason;
  public String message;
  /** The last lines of CRIU's log when CRIU failed. */
  public String criuLogTail;

  /** Sets the kind's own phase to Failed. */
  protected abstract void phaseFailed();

  /** The kind's phase (Pending when it has none yet) and what it means for GitOps tools. */
  protected abstract String phaseName();

  protected abstract Readiness.State stateOfPhase();

  /**
   * Completed is Ready, Failed is Stalled with the failure's reason; anything before is
   * Reconciling, with the reason the work waits (a retry, the node's queue, the Checkpoint a
   * Restore needs) or else the phase.
   */
  @Override
  public Readiness readiness() {
    String why = reason != null ? reason : phaseName();
    return new Readiness(stateOfPhase(), why, message != null ? message : phaseName());
  }

  /** Ends in Failed the way every writer records a failure: phase, reason, message, time, conditions. */
  public void fail(String reason, String message, Long generation) {
    phaseFailed();
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
  public int attempts() {
    return attempts == null ? 0 : attempts;
  }

  @Override
  public void startAttempt() {
    attempts = attempts() + 1;
    nextRetryTime = null;
    progress = null; // each attempt moves its bytes anew
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
}
