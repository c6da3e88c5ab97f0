package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import java.util.List;

/** How the Pod that a pod checkpoint is restored into is named and pulls its checkpoint images. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestorePodSpec {
  @JsonPropertyDescription("Name of the restored Pod; default <checkpointed pod>-<5 characters of the Restore's uid>, or a StatefulSet's pod's own name (its identity).")
  public String name;

  @Default("Remove")
  @JsonPropertyDescription("Remove: the restored pod does not keep the labels by which the checkpointed pod's controller (ReplicaSet, StatefulSet, Job...) selected it, nor those controllers add. Keep: it keeps them; Services, PodDisruptionBudgets and autoscalers that select the controller's pods then count it too. Either way the pod belongs to its Restore: the old controller neither adopts nor deletes it.")
  public ControllerLabels controllerLabels;

  @JsonPropertyDescription("Secrets of the Restore's namespace the node needs to pull the checkpoint images; added to the pod's own.")
  public List<String> imagePullSecrets;

  public ControllerLabels controllerLabelsOrDefault() {
    return controllerLabels != null ? controllerLabels : ControllerLabels.Remove;
  }
}
