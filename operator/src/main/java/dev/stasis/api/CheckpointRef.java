package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointRef {
  @Required
  @JsonPropertyDescription("Name of a Checkpoint in the Restore's namespace.")
  public String name;

  @JsonPropertyDescription("Must be empty or the Restore's own namespace: a Restore may only use its namespace's checkpoints.")
  public String namespace;

  public CheckpointRef() {}

  public CheckpointRef(String name) {
    this.name = name;
  }
}
