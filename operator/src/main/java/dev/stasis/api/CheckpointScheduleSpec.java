package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointScheduleSpec {
  @Required
  @JsonPropertyDescription("5-field cron expression, @hourly/@daily/..., or @every <duration>.")
  public String schedule;

  @JsonPropertyDescription("IANA time zone the schedule is read in; default UTC.")
  public String timeZone;

  public Boolean suspend;

  @JsonPropertyDescription("The Checkpoint each run creates.")
  public CheckpointSpec checkpointTemplate;

  public Retention retention;

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Retention {
    @io.fabric8.generator.annotation.Min(1)
    @JsonPropertyDescription("Keep this many newest Checkpoints (at least 1).")
    public Integer keepLast;
  }
}
