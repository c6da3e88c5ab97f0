package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.List;

/** How the Pod that a pod checkpoint is restored into is named and pulls its checkpoint images. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestorePodSpec {
  @JsonPropertyDescription("Name of the restored Pod; default <checkpointed pod>-restored-<5 characters>.")
  public String name;

  @JsonPropertyDescription("Secrets of the Restore's namespace the node needs to pull the checkpoint images; added to the pod's own.")
  public List<String> imagePullSecrets;
}
