package dev.stasis.api;

/** What a restored pod keeps of the labels by which the checkpointed pod's controller selected it. */
public enum ControllerLabels {
  /** The controller's selector labels and the labels controllers add are left out: it never selects the pod. */
  Remove,
  /**
   * Kept: Services, PodDisruptionBudgets and HorizontalPodAutoscalers that select the controller's
   * pods count the restored pod too; the controller itself still neither adopts nor deletes it.
   */
  Keep
}
