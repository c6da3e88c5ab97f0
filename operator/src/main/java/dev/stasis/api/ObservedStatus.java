package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/**
 * What every status of ours carries for {@link ConditionedStatus}: its conditions and the
 * {@code metadata.generation} it was written for. Each kind adds its phase and says what it means
 * ({@link #readiness()}).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public abstract class ObservedStatus implements ConditionedStatus {
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  @Override
  public List<Condition> conditions() {
    return conditions;
  }

  @Override
  public Long observedGeneration() {
    return observedGeneration;
  }

  @Override
  public void observedGeneration(Long generation) {
    observedGeneration = generation;
  }
}
