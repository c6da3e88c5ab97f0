package dev.stasis.api;

/** What became of the workload when a Migration failed. */
public enum MigrationRecovery {
  /** Nothing was stopped (refused before the checkpoint), or the checkpoint failed and the agent resumed the stopped tree. */
  SourceRunning,
  /** The workload was ended at the source and the restore elsewhere failed: restoring it on the source node. */
  RestoringOnSource,
  /** The restore elsewhere failed; the checkpoint was restored on the source node, where it runs again. */
  RestoredOnSource,
  /**
   * Neither the restore elsewhere nor the one on the source succeeded (or the source's agent was
   * lost): the workload runs nowhere Stasis knows of; its checkpoint is kept to be restored.
   */
  NotRecovered,
  /** The source's agent was lost mid-checkpoint: whether the workload still runs is known only on that node. */
  Unknown
}
