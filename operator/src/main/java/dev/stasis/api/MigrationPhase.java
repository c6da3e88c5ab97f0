package dev.stasis.api;

public enum MigrationPhase {
  Pending,
  /** Its Checkpoint is being taken; the workload is frozen, then stopped until the archive is stored. */
  Checkpointing,
  /** Its Restore (or, after that failed, the one on the source node) is under way. */
  Restoring,
  Completed,
  Failed;

  public boolean isTerminal() {
    return this == Completed || this == Failed;
  }
}
