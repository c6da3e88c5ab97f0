package dev.stasis.agent;

import dev.stasis.kube.RetryPolicy;

/** Node-side work failed; the reason is stable, the message says what to do, the log tail is CRIU's. */
public class WorkFailure extends Exception {
  private final String reason;
  private final String logTail;

  public WorkFailure(String reason, String message) {
    this(reason, message, null);
  }

  public WorkFailure(String reason, String message, String logTail) {
    super(message);
    this.reason = reason;
    this.logTail = logTail;
  }

  public String reason() {
    return reason;
  }

  /** The final failure after {@code attempts}: its message names how often it was tried, when more than once. */
  public WorkFailure afterAttempts(int attempts, int backoffLimit) {
    String message = RetryPolicy.finalMessage(reason, getMessage(), attempts, backoffLimit);
    return message.equals(getMessage()) ? this : new WorkFailure(reason, message, logTail);
  }

  public String logTail() {
    return logTail == null || logTail.isBlank() ? null : logTail;
  }
}
