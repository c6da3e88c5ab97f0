package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStatus extends AgentWorkStatus {
  public CheckpointPhase phase;
  /** What is checkpointed, for people and kubectl get's TARGET column: pod/NAME or process/PID. */
  @JsonPropertyDescription("What is checkpointed, as kubectl get shows it: pod/NAME or process/PID (on status.node).")
  public String target;
  /**
   * Process targets: the process the first attempt found under the target's PID. Every later
   * attempt, and the dump itself, checks that PID still names this process (ProcessChanged).
   */
  public ProcessIdentity process;
  /** Storage the archive goes to, resolved from spec.storage or the default. */
  public String storage;
  /**
   * The archive of a process checkpoint, or of a pod checkpoint of exactly one container. Recorded
   * while still Running once the archive is stored, before a workload is ended (leaveRunning: false),
   * so that the checkpoint is finished from it should the agent die after ending it.
   */
  public ArchiveStatus archive;
  /** Pod checkpoints: each container checkpointed, with its own archive. */
  public List<ContainerCheckpointStatus> containers;
  public CheckpointStats stats;

  @Override
  protected void phaseFailed() {
    phase = CheckpointPhase.Failed;
  }

  @Override
  protected String phaseName() {
    return phaseOrPending().name();
  }

  @Override
  protected Readiness.State stateOfPhase() {
    return switch (phaseOrPending()) {
      case Pending, Running -> Readiness.State.RECONCILING;
      case Completed -> Readiness.State.READY;
      case Failed -> Readiness.State.STALLED;
    };
  }

  public CheckpointPhase phaseOrPending() {
    return phase != null ? phase : CheckpointPhase.Pending;
  }
}
