package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/**
 * The spec of the Checkpoints a schedule creates. It has the fields of {@link CheckpointSpec}
 * without their immutability rules: a schedule's target may change (a restored job, a new PID),
 * each Checkpoint's may not.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointTemplate {
  @Required
  @JsonPropertyDescription("What to checkpoint: exactly one of process or pod.")
  public CheckpointTarget target;

  @JsonPropertyDescription("Name of the CheckpointStorage to store the archives in; default: the storage marked default.")
  public String storage;

  public CheckpointOptions options;

  @JsonPropertyDescription("Keep the stored archive when a Checkpoint is deleted (by retention too).")
  public Boolean retainArchive;

  @Pattern(CheckpointSpec.DURATION_PATTERN)
  @JsonPropertyDescription("Delete each Checkpoint this long after its creation, once finished (e.g. 24h).")
  public String ttl;

  @Min(0)
  @JsonPropertyDescription("The backoffLimit of each Checkpoint (see Checkpoint spec.backoffLimit); default 3.")
  public Integer backoffLimit;

  public CheckpointSpec toCheckpointSpec() {
    CheckpointSpec spec = new CheckpointSpec(target);
    spec.storage = storage;
    spec.options = options;
    spec.retainArchive = retainArchive;
    spec.ttl = ttl;
    spec.backoffLimit = backoffLimit;
    return spec;
  }
}
