package dev.stasis.api;

public enum RestorePhase {
  Pending,
  Restoring,
  Completed,
  Failed;

  public boolean isTerminal() {
    return this == Completed || this == Failed;
  }
}
