package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointScheduleStatus implements ConditionedStatus {
  public String lastScheduleTime;
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  @Override
  public List<Condition> conditions() {
    return conditions;
  }
}
