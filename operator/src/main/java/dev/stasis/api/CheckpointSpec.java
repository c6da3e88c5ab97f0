package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointSpec {
  /** Durations in specs: whole numbers of days, hours, minutes, seconds (90s, 1h30m, 7d). */
  public static final String DURATION_PATTERN = "^([0-9]+(d|h|m|s))+$";

  @Required
  @ValidationRule(value = "self == oldSelf", message = "target is immutable: create a new Checkpoint instead")
  @JsonPropertyDescription("What to checkpoint: exactly one of process or pod.")
  public CheckpointTarget target;

  @ValidationRule(value = "self == oldSelf", message = "storage is immutable: create a new Checkpoint instead")
  @JsonPropertyDescription("Name of the CheckpointStorage to store the archive in; default: the storage marked default.")
  public String storage;

  @ValidationRule(value = "self == oldSelf", message = "options are immutable: create a new Checkpoint instead")
  public CheckpointOptions options;

  @JsonPropertyDescription("Keep the stored archive when this Checkpoint is deleted.")
  public Boolean retainArchive;

  @Pattern(DURATION_PATTERN)
  @JsonPropertyDescription("Delete this Checkpoint (and its archive, unless retainArchive) this long after its"
      + " creation, once it is finished; e.g. 24h or 7d.")
  public String ttl;

  public CheckpointSpec() {}

  public CheckpointSpec(CheckpointTarget target) {
    this.target = target;
  }

  public CheckpointOptions optionsOrDefaults() {
    return options != null ? options : new CheckpointOptions();
  }
}
