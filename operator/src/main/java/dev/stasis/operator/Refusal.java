package dev.stasis.operator;

/** A resource cannot go ahead as written: a stable reason and words that say what to fix. */
public class Refusal extends Exception {
  private final String reason;

  public Refusal(String reason, String message) {
    super(message);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
