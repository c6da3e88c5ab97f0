package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
// On the spec, not on the fields: a field's own rule is skipped when the field is added or removed.
@ValidationRule(
    value = "has(self.storage) == has(oldSelf.storage) && (!has(self.storage) || self.storage == oldSelf.storage)",
    message = "storage is immutable: create a new Checkpoint instead")
@ValidationRule(
    value = "has(self.options) == has(oldSelf.options) && (!has(self.options) || self.options == oldSelf.options)",
    message = "options are immutable: create a new Checkpoint instead")
public class CheckpointSpec {
  /** Durations in specs: whole numbers of days, hours, minutes, seconds (90s, 1h30m, 7d). */
  public static final String DURATION_PATTERN = "^([0-9]+(d|h|m|s))+$";
  public static final int DEFAULT_BACKOFF_LIMIT = 3;

  @Required
  @ValidationRule(value = "self == oldSelf", message = "target is immutable: create a new Checkpoint instead")
  @JsonPropertyDescription("What to checkpoint: exactly one of process or pod.")
  public CheckpointTarget target;

  @JsonPropertyDescription("Name of the CheckpointStorage to store the archive in; default: the storage marked default.")
  public String storage;

  public CheckpointOptions options;

  @JsonPropertyDescription("Keep the stored archive when this Checkpoint is deleted.")
  public Boolean retainArchive;

  @Pattern(DURATION_PATTERN)
  @JsonPropertyDescription("Delete this Checkpoint (and its archive, unless retainArchive) this long after its"
      + " creation, once it is finished; e.g. 24h or 7d.")
  public String ttl;

  @Min(0)
  @JsonPropertyDescription("How often a checkpoint is tried again after a transient failure (storage down or"
      + " answering 5xx, kubelet unreachable, the agent restarted mid-work), waiting 10s, 20s, 40s... in between;"
      + " bad input fails at once. Default 3 (4 attempts in all); 0 never retries.")
  public Integer backoffLimit;

  public CheckpointSpec() {}

  public CheckpointSpec(CheckpointTarget target) {
    this.target = target;
  }

  public int backoffLimitOrDefault() {
    return backoffLimit != null ? backoffLimit : DEFAULT_BACKOFF_LIMIT;
  }

  public CheckpointOptions optionsOrDefaults() {
    return options != null ? options : new CheckpointOptions();
  }
}
