package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "!has(self.container) || !has(self.containers)",
    message = "set container (one) or containers (several), not both")
public class PodTarget {
  @Required
  @JsonPropertyDescription("Pod in the Checkpoint's namespace.")
  public String name;

  @JsonPropertyDescription("Container to checkpoint; all containers of the pod when neither container nor containers"
      + " is set.")
  public String container;

  @JsonPropertyDescription("Containers to checkpoint, when several but not all of the pod's.")
  public List<String> containers;

  public PodTarget() {}

  public PodTarget(String name, String container) {
    this.name = name;
    this.container = container;
  }

  /** The containers named, or empty for all of the pod's. */
  public List<String> namedContainers() {
    if (containers != null && !containers.isEmpty()) {
      return containers;
    }
    return container == null || container.isBlank() ? List.of() : List.of(container);
  }
}
