package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(value = "self == oldSelf", message = "a Migration's spec is immutable: create a new Migration instead")
public class MigrationSpec {
  @Required
  @JsonPropertyDescription("What to move, as a Checkpoint's spec.target: a process tree on a node (process) or a pod.")
  public CheckpointTarget target;

  @JsonPropertyDescription("Where it may go, as a Restore's spec.placement. The source node is excluded unless"
      + " allowSourceNode.")
  public RestorePlacement placement;

  @JsonPropertyDescription("Name of the CheckpointStorage for the checkpoint's archive; default: the storage marked default.")
  public String storage;

  @JsonPropertyDescription("Let the workload come back on the node it runs on now, like any other compatible node"
      + " (placement prefers the source node): a stop and restore in place. Default false: only other nodes.")
  public Boolean allowSourceNode;

  public MigrationSpec() {}

  public MigrationSpec(CheckpointTarget target) {
    this.target = target;
  }

  public boolean allowsSourceNode() {
    return Boolean.TRUE.equals(allowSourceNode);
  }

  public RestorePlacement placementOrDefaults() {
    return placement != null ? placement : new RestorePlacement();
  }
}
