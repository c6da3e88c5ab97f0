package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.checkpointRef) != has(self.scheduleRef)",
    message = "set exactly one of checkpointRef (a Checkpoint) or scheduleRef (the newest Completed checkpoint of a schedule)")
public class RestoreSpec {
  @ValidationRule(value = "self == oldSelf", message = "checkpointRef is immutable: create a new Restore instead")
  public CheckpointRef checkpointRef;

  @ValidationRule(value = "self == oldSelf", message = "scheduleRef is immutable: create a new Restore instead")
  @JsonPropertyDescription("Restore the newest Completed checkpoint of this CheckpointSchedule (in the Restore's namespace).")
  public ScheduleRef scheduleRef;

  @ValidationRule(value = "self == oldSelf", message = "placement is immutable: create a new Restore instead")
  public RestorePlacement placement;

  public RestorePlacement placementOrDefaults() {
    return placement != null ? placement : new RestorePlacement();
  }

  @JsonPropertyDescription("Pod checkpoints: how to name the restored Pod and pull its checkpoint images.")
  public RestorePodSpec pod;
}
