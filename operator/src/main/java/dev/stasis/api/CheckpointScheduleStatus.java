package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointScheduleStatus extends ObservedStatus {
  public static final String ACTIVE = "Active";
  public static final String SUSPENDED = "Suspended";
  public static final String FAILED = "Failed";

  @JsonPropertyDescription("Active, Suspended, or Failed when the spec cannot be used (see reason and message).")
  public String phase;
  public String reason;
  public String message;

  @JsonPropertyDescription("Scheduled time of the last run that created a Checkpoint.")
  public String lastScheduleTime;
  @JsonPropertyDescription("Scheduled time of the last run that was skipped: past its starting deadline, or Forbid"
      + " while a checkpoint was still being taken.")
  public String lastSkippedTime;
  public String nextScheduleTime;
  @JsonPropertyDescription("Completion time of the newest Completed checkpoint.")
  public String lastSuccessfulTime;

  @JsonPropertyDescription("Checkpoints of this schedule still being taken.")
  public List<String> active = new ArrayList<>();

  @JsonPropertyDescription("Checkpoints created by runs (with a selector: one per pod and run).")
  public long runs;
  @JsonPropertyDescription("Checkpoints of this schedule that completed.")
  public long succeeded;
  @JsonPropertyDescription("Checkpoints of this schedule that failed.")
  public long failed;
  @JsonPropertyDescription("Runs skipped under concurrencyPolicy Forbid (with a selector: counted per pod).")
  public long skipped;
  @JsonPropertyDescription("Runs skipped because they could not start within startingDeadlineSeconds.")
  public long missed;
  @JsonPropertyDescription("Checkpoints taken because the target's node was being drained.")
  public long drainTriggered;

  @JsonPropertyDescription("The drains this schedule has taken checkpoints for (one per target), until the node is"
      + " schedulable again.")
  public List<DrainCheckpoint> drains = new ArrayList<>();

  @JsonPropertyDescription("With a selector: how many pods the last run selected.")
  public Integer selectedPods;

  @JsonPropertyDescription("With a selector: the pods the last run selected but did not checkpoint, and why; the"
      + " first 50 (skippedPodsByReason counts them all).")
  public List<SkippedPod> skippedPods = new ArrayList<>();

  @JsonPropertyDescription("With a selector: how many selected pods the last run did not checkpoint, by reason,"
      + " most first (the 20 most frequent reasons).")
  public List<ReasonCount> skippedPodsByReason = new ArrayList<>();

  /**
   * A fixed process target: the process the schedule's first checkpoint found under the template's
   * PID. Later runs take only that process (spec.target.process.startTicks and bootId of the
   * Checkpoints it creates): once it has ended, they fail ProcessChanged rather than take whatever
   * got its PID. Changing the template's node or pid lets the next run find the process anew.
   */
  public ProcessIdentity process;
  @JsonPropertyDescription("Failovers of this schedule's target after its node was lost, oldest first; the newest 50.")
  public List<FailoverRecord> failovers = new ArrayList<>();

  /**
   * A fixed process target since a failover: where its tree runs now. While the template still names
   * {@code from}, the schedule checkpoints (and fails over) this one instead; a template changed since
   * wins.
   */
  @JsonPropertyDescription("Where the template's process runs since its last failover, which later runs checkpoint.")
  public FailedOverTarget failedOverTarget;

  /** Active and Suspended are Ready (a suspended schedule is as its spec asks); Failed is Stalled. */
  @Override
  public Readiness readiness() {
    if (FAILED.equals(phase)) {
      return Readiness.stalled(reason, message);
    }
    if (SUSPENDED.equals(phase)) {
      return Readiness.ready("Suspended", message);
    }
    if (ACTIVE.equals(phase)) {
      return Readiness.ready("Scheduled", "checkpoints are taken on schedule");
    }
    return Readiness.reconciling("Pending", "the operator has not checked the schedule yet");
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class DrainCheckpoint {
    public String node;
    @JsonPropertyDescription("The pod drained, for a schedule with a selector.")
    public String pod;
    public String checkpoint;
    @JsonPropertyDescription("With failover.onDrain: the Migration that moves the target off the drained node.")
    public String migration;

    public DrainCheckpoint() {}

    public DrainCheckpoint(String node, String pod, String checkpoint) {
      this.node = node;
      this.pod = pod;
      this.checkpoint = checkpoint;
    }
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class SkippedPod {
    public String pod;
    @JsonPropertyDescription("PodNotRunning, ContainerNotFound, ContainerNotRunning, GpuNotSupported, or"
        + " CheckpointInProgress (concurrencyPolicy Forbid).")
    public String reason;
    public String message;

    public SkippedPod() {}

    public SkippedPod(String pod, String reason, String message) {
      this.pod = pod;
      this.reason = reason;
      this.message = StatusLimits.shorten(message, StatusLimits.MAX_MESSAGE_CHARS);
    }
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class FailoverRecord {
    @JsonPropertyDescription("The node that was lost.")
    public String lostNode;
    @JsonPropertyDescription("Its agent's last heartbeat: one failover per loss, however long the node stays lost.")
    public String lastHeartbeat;
    @JsonPropertyDescription("When the failover began.")
    public String time;
    @JsonPropertyDescription("The checkpoint restored: the target's newest Completed one.")
    public String checkpoint;
    @JsonPropertyDescription("How much work was lost: the checkpoint's age when the failover began, in seconds.")
    public Long lostWorkSeconds;
    @JsonPropertyDescription("The Restore the failover created.")
    public String restore;
    @JsonPropertyDescription("Where it runs again, once the Restore completed.")
    public String node;
    @JsonPropertyDescription("PID of the restored tree's root, for people.")
    public Integer restoredPid;
    @JsonPropertyDescription("The restored tree's root as an identity (PID, start ticks, boot id): the process later"
        + " runs take, never another that got its PID.")
    public ProcessIdentity restoredProcess;
    @JsonPropertyDescription("The pod it runs in again (a pod target).")
    public String restoredPod;
    @JsonPropertyDescription("Pending, Completed or Failed, as its Restore; Failed with a reason when there was nothing to restore.")
    public String phase;
    public String reason;
    public String message;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class FailedOverTarget {
    @JsonPropertyDescription("The template's target the failover moved away from.")
    public ProcessTarget from;
    @JsonPropertyDescription("Where that process runs since: node and PID of the restored tree, pinned to its start"
        + " ticks and boot id, so that later runs take that process only (ProcessChanged once it has ended).")
    public ProcessTarget to;
    @JsonPropertyDescription("The template's pod the move took away (a pod target).")
    public String fromPod;
    @JsonPropertyDescription("The pod it runs as since: the restored pod, which may have another name.")
    public String toPod;
    @JsonPropertyDescription("The failover's Restore or the drain's Migration that moved it.")
    public String by;
    @JsonPropertyDescription("When it ran there (the Restore's or Migration's completion).")
    public String since;
  }
}
