package dev.stasis.api;

/**
 * The status of work an agent does in attempts (Checkpoint, Restore): how many it started, when it
 * tries again after a transient failure, and where it waits in its node's queue.
 */
public interface AttemptedStatus extends ConditionedStatus {
  /** The reason while the work waits for one of its node's slots (the agent's --max-concurrent). */
  String WAITING_FOR_NODE_SLOT = "WaitingForNodeSlot";

  int attempts();

  /** Another attempt begins: counted, and no longer waiting for a retry or a slot. */
  void startAttempt();

  /** Back to Pending after a transient failure, until {@code retryTime}; condition Retrying says why. */
  void waitForRetry(String reason, String message, String retryTime, Long generation);

  void waitInQueue(int position, String message);

  String nextRetryTime();

  /** The work ended: a Retrying condition, if there is one, turns False with the final reason. */
  default void stopRetrying(String reason, String message, Long generation) {
    if (Conditions.find(conditions(), Conditions.RETRYING) != null) {
      Conditions.set(this, Conditions.RETRYING, false, reason, message, generation);
    }
  }
}
