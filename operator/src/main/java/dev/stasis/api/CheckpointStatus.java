package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStatus implements ConditionedStatus {
  public CheckpointPhase phase;
  /** Node whose agent does (or did) the work. */
  public String node;
  /** Storage the archive goes to, resolved from spec.storage or the default. */
  public String storage;
  public String startTime;
  public String completionTime;
  /** The archive of a process checkpoint, or of a pod checkpoint of exactly one container. */
  public ArchiveStatus archive;
  /** Pod checkpoints: each container checkpointed, with its own archive. */
  public List<ContainerCheckpointStatus> containers;
  public CheckpointStats stats;
  /** Stable CamelCase reason of the last failure or the current state. */
  public String reason;
  public String message;
  /** The last lines of CRIU's log when CRIU failed. */
  public String criuLogTail;
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  /** Ends in Failed the way every writer records a failure: phase, reason, message, time, conditions. */
  public void fail(String reason, String message, Long generation) {
    phase = CheckpointPhase.Failed;
    completionTime = Conditions.now();
    this.reason = reason;
    this.message = message;
    Conditions.set(this, Conditions.FAILED, true, reason, message, generation);
    Conditions.set(this, Conditions.COMPLETE, false, reason, message, generation);
  }

  @Override
  public List<Condition> conditions() {
    return conditions;
  }

  public CheckpointPhase phaseOrPending() {
    return phase != null ? phase : CheckpointPhase.Pending;
  }
}
