package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.LabelSelector;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.checkpointTemplate) != has(self.selector)",
    message = "set exactly one of checkpointTemplate (a fixed target) or selector (pods by label)")
@ValidationRule(
    value = "!has(self.containers) || has(self.selector)",
    message = "containers only go with selector")
@ValidationRule(
    value = "!has(self.storage) || has(self.selector)",
    message = "storage goes with selector; with checkpointTemplate set checkpointTemplate.storage")
@ValidationRule(
    value = "!(has(self.ttl) || has(self.retainArchive) || has(self.backoffLimit)) || has(self.selector)",
    message = "ttl, retainArchive and backoffLimit go with selector; with checkpointTemplate set them in checkpointTemplate")
public class CheckpointScheduleSpec {
  @Required
  @JsonPropertyDescription("When to take checkpoints: a 5-field cron expression (minute hour day-of-month month"
      + " day-of-week), @hourly, @daily, @weekly, @monthly, @yearly, or @every <duration> such as @every 30m.")
  public String schedule;

  @JsonPropertyDescription("IANA time zone the cron expression is read in, e.g. Europe/Berlin; default UTC.")
  public String timeZone;

  @JsonPropertyDescription("Stop taking checkpoints (scheduled and drain-triggered) while true."
      + " A run missed while suspended is taken on resume unless it is past startingDeadlineSeconds.")
  public Boolean suspend;

  @Min(0)
  @JsonPropertyDescription("Skip a run that could not start within this many seconds of its time"
      + " (operator down, schedule suspended). Default: no deadline.")
  public Long startingDeadlineSeconds;

  @Default("Forbid")
  @JsonPropertyDescription("What a run does while a checkpoint of this schedule is still being taken:"
      + " Forbid (default) skips the run, Allow takes another, Replace deletes the running one and takes a new one."
      + " With a selector this holds for each pod: a pod whose last checkpoint is still being taken is skipped.")
  public ConcurrencyPolicy concurrencyPolicy;

  @JsonPropertyDescription("The Checkpoint each run creates. Unlike a Checkpoint's spec it may be changed.")
  public CheckpointTemplate checkpointTemplate;

  @JsonPropertyDescription("Pods of the schedule's namespace to checkpoint, by label: each run takes one Checkpoint"
      + " of each selected pod that is Running, named <schedule>-<time>-<pod> and labelled stasis.dev/pod.")
  public LabelSelector selector;

  @JsonPropertyDescription("Containers of each selected pod to checkpoint, together in one Checkpoint; default all of"
      + " the pod's. A pod without one of them is skipped (ContainerNotFound).")
  public List<String> containers;

  @JsonPropertyDescription("With a selector: the CheckpointStorage to store the archives in; default: the storage"
      + " marked default.")
  public String storage;

  @JsonPropertyDescription("With a selector: keep the stored archive when a Checkpoint is deleted (by retention too).")
  public Boolean retainArchive;

  @Pattern(CheckpointSpec.DURATION_PATTERN)
  @JsonPropertyDescription("With a selector: delete each Checkpoint this long after its creation, once finished"
      + " (e.g. 24h).")
  public String ttl;

  @Min(0)
  @JsonPropertyDescription("With a selector: the backoffLimit of each Checkpoint (see Checkpoint spec.backoffLimit);"
      + " default 3.")
  public Integer backoffLimit;

  @JsonPropertyDescription("Which of this schedule's checkpoints to keep; default all.")
  public Retention retention;

  public Triggers triggers;

  @JsonPropertyDescription("Keep the target running when its node is lost: restore its newest Completed checkpoint"
      + " on another node.")
  public Failover failover;

  @JsonPropertyDescription("Delete this schedule's Checkpoints (and so their archives) with the schedule. Default:"
      + " they are kept.")
  public Boolean deleteCheckpointsWithSchedule;

  public enum ConcurrencyPolicy {
    Forbid,
    Allow,
    Replace
  }

  public ConcurrencyPolicy concurrencyPolicyOrDefault() {
    return concurrencyPolicy != null ? concurrencyPolicy : ConcurrencyPolicy.Forbid;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Retention {
    @Min(1)
    @JsonPropertyDescription("Keep this many newest Completed checkpoints (at least 1); with a selector, of each pod.")
    public Integer keepLast;

    @Pattern(CheckpointSpec.DURATION_PATTERN)
    @JsonPropertyDescription("Delete checkpoints older than this (e.g. 7d, 12h); the newest Completed one (of each pod,"
        + " with a selector) is always kept.")
    public String maxAge;

    @Min(0)
    @JsonPropertyDescription("Keep this many newest Failed checkpoints (of each pod, with a selector), for their"
        + " reasons; default 1.")
    public Integer keepFailed;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Triggers {
    @JsonPropertyDescription("Take a checkpoint at once when the target's node (with a selector: the node of each"
        + " selected pod) is cordoned or gets a NoExecute taint: one per target and drain, labelled"
        + " stasis.dev/trigger=drain.")
    public Boolean onNodeDrain;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Failover {
    @JsonPropertyDescription("When the target's node is lost (its agent's heartbeat unchanged and its Node NotReady or"
        + " gone, for after), restore the target's newest Completed checkpoint on a compatible node, once per loss.")
    public NodeLost onNodeLost;

    @JsonPropertyDescription("When the target's node is drained (cordoned or tainted NoExecute), move the target to"
        + " another compatible node with a Migration (checkpoint, stop, restore) instead of only checkpointing it.")
    public Boolean onDrain;

    @JsonPropertyDescription("Where failover restores may go, as a Restore's spec.placement; the lost node is never"
        + " chosen.")
    public RestorePlacement placement;

    @JsonPropertyDescription("onDrain only: let the drain's Migration restore the target on the drained node itself,"
        + " which it otherwise excludes (a one-node cluster, a drain that ends with an uncordon). A lost node is never"
        + " chosen.")
    public Boolean allowSourceNode;

    @Default("Auto")
    @JsonPropertyDescription("Auto: once the target runs again elsewhere, the lost node's agent ends the old copy when"
        + " it comes back (identified by PID, start time and boot id). None: you fence lost nodes yourself.")
    public Fencing fencing;

    public boolean migratesOnDrain() {
      return Boolean.TRUE.equals(onDrain);
    }

    public boolean fences() {
      return fencing != Fencing.None;
    }
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class NodeLost {
    @Required
    @Pattern(CheckpointSpec.DURATION_PATTERN)
    @JsonPropertyDescription("How long the node must have been lost before the target is restored elsewhere, e.g."
        + " 2m (at least 1m: three of the agent's heartbeats).")
    public String after;
  }

  public enum Fencing {
    Auto,
    None
  }
}
