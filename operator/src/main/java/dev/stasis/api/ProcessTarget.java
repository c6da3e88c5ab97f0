package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProcessTarget {
  @Required
  @JsonPropertyDescription("Node the process runs on (the name its agent registered as NodeProfile).")
  public String node;

  @Required
  @Min(2)
  @JsonPropertyDescription("PID of the root of the process tree, as seen from the node.")
  public Integer pid;

  public ProcessTarget() {}

  public ProcessTarget(String node, Integer pid) {
    this.node = node;
    this.pid = pid;
  }
}
