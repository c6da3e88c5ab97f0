package dev.stasis.api;

import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** A status with Kubernetes-style conditions, so that {@link Conditions} can maintain them. */
public interface ConditionedStatus {
  List<Condition> conditions();
}
