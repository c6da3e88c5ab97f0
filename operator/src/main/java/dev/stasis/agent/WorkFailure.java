package dev.stasis.agent;

/** Node-side work failed; the reason is stable, the message says what to do, the log tail is CRIU's. */
class WorkFailure extends Exception {
  private final String reason;
  private final String logTail;

  WorkFailure(String reason, String message) {
    this(reason, message, null);
  }

  WorkFailure(String reason, String message, String logTail) {
    super(message);
    this.reason = reason;
    this.logTail = logTail;
  }

  String reason() {
    return reason;
  }

  String logTail() {
    return logTail == null || logTail.isBlank() ? null : logTail;
  }
}
