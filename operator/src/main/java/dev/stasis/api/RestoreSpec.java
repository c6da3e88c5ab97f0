package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.checkpointRef) != has(self.scheduleRef)",
    message = "set exactly one of checkpointRef (a Checkpoint) or scheduleRef (the newest Completed checkpoint of a schedule)")
// On the spec, not on the fields: a field's own rule is skipped when the field is added or removed.
@ValidationRule(
    value = "has(self.checkpointRef) == has(oldSelf.checkpointRef) && (!has(self.checkpointRef) || self.checkpointRef == oldSelf.checkpointRef)",
    message = "checkpointRef is immutable: create a new Restore instead")
@ValidationRule(
    value = "has(self.scheduleRef) == has(oldSelf.scheduleRef) && (!has(self.scheduleRef) || self.scheduleRef == oldSelf.scheduleRef)",
    message = "scheduleRef is immutable: create a new Restore instead")
@ValidationRule(
    value = "has(self.placement) == has(oldSelf.placement) && (!has(self.placement) || self.placement == oldSelf.placement)",
    message = "placement is immutable: create a new Restore instead")
public class RestoreSpec {
  public CheckpointRef checkpointRef;

  @JsonPropertyDescription("Restore the newest Completed checkpoint of this CheckpointSchedule (in the Restore's namespace).")
  public ScheduleRef scheduleRef;

  public RestorePlacement placement;

  @Min(0)
  @JsonPropertyDescription("How often the agent tries again when fetching the checkpoint failed transiently (storage"
      + " unreachable or answering 5xx), waiting 10s, 20s, 40s... in between. Only failures before CRIU started are"
      + " retried, so a retry can never leave two copies of the process. Default 3; 0 never retries.")
  public Integer backoffLimit;

  public int backoffLimitOrDefault() {
    return backoffLimit != null ? backoffLimit : CheckpointSpec.DEFAULT_BACKOFF_LIMIT;
  }

  public RestorePlacement placementOrDefaults() {
    return placement != null ? placement : new RestorePlacement();
  }

  @JsonPropertyDescription("Pod checkpoints: how to name the restored Pod and pull its checkpoint images.")
  public RestorePodSpec pod;
}
