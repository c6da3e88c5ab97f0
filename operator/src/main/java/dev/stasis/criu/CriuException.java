package dev.stasis.criu;

/** CRIU failed. {@link #reason()} is a stable CamelCase reason; the log tail shows CRIU's own words. */
public class CriuException extends Exception {
  private final String reason;
  private final String logTail;

  public CriuException(String reason, String message, String logTail) {
    super(message);
    this.reason = reason;
    this.logTail = logTail;
  }

  public String reason() {
    return reason;
  }

  public String logTail() {
    return logTail;
  }
}
