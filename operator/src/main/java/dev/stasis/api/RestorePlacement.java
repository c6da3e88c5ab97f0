package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestorePlacement {
  @JsonPropertyDescription("Restore on this node; it must be able to run the checkpoint. Default: the source node, else any compatible node.")
  public String nodeName;
}
