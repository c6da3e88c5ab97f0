package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ScheduleRef {
  @Required
  @JsonPropertyDescription("Name of a CheckpointSchedule in the Restore's namespace.")
  public String name;

  @JsonPropertyDescription("For a schedule with spec.selector: the pod whose newest Completed checkpoint to restore."
      + " Required when the schedule has checkpoints of several pods.")
  public String pod;

  public ScheduleRef() {}

  public ScheduleRef(String name) {
    this.name = name;
  }

  public ScheduleRef(String name, String pod) {
    this.name = name;
    this.pod = pod;
  }
}
