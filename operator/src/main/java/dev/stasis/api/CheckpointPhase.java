package dev.stasis.api;

public enum CheckpointPhase {
  Pending,
  Running,
  Completed,
  Failed;

  public boolean isTerminal() {
    return this == Completed || this == Failed;
  }
}
