package dev.stasis.api;

import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/**
 * A status with Kubernetes-style conditions, so that {@link Conditions} can maintain them, and with
 * the {@code observedGeneration} GitOps tools compare with the resource's generation.
 */
public interface ConditionedStatus {
  List<Condition> conditions();

  /** What this status says of the resource, by its phase: the source of Ready, Reconciling and Stalled. */
  Readiness readiness();

  /** The {@code metadata.generation} this status was written for. */
  Long observedGeneration();

  /** Records that this status was written for the resource's {@code metadata.generation}. */
  void observedGeneration(Long generation);
}
