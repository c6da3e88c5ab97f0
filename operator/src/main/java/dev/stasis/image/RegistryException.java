package dev.stasis.image;

/** The registry did not take (or give back) an image: a stable reason and what to check. */
public class RegistryException extends Exception {
  private final String reason;

  public RegistryException(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public RegistryException(String reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
