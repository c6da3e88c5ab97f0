package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ScheduleRef {
  @Required
  @JsonPropertyDescription("Name of a CheckpointSchedule in the Restore's namespace.")
  public String name;

  public ScheduleRef() {}

  public ScheduleRef(String name) {
    this.name = name;
  }
}
