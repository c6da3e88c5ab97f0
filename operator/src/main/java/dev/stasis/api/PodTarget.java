package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class PodTarget {
  @Required
  @JsonPropertyDescription("Pod in the Checkpoint's namespace.")
  public String name;

  @JsonPropertyDescription("Container to checkpoint; all containers of the pod when empty.")
  public String container;

  public PodTarget() {}

  public PodTarget(String name, String container) {
    this.name = name;
    this.container = container;
  }
}
