package dev.stasis.kubelet;

/** The kubelet did not checkpoint: a stable reason and words that say what to check. */
public class KubeletException extends Exception {
  private final String reason;

  public KubeletException(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public KubeletException(String reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
