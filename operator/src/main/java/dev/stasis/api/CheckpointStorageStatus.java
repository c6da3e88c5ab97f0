package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStorageStatus implements ConditionedStatus {
  public static final String AVAILABLE = "Available";
  public static final String UNAVAILABLE = "Unavailable";

  /** Available or Unavailable, after a real check of the bucket or path. */
  public String phase;
  public String location;
  public String reason;
  public String message;
  /** Objects the garbage collector removed from this storage, in all. */
  public Long garbageCollectedObjects;
  public String lastGarbageCollectionTime;
  public Long observedGeneration;
  public List<Condition> conditions = new ArrayList<>();

  @Override
  public List<Condition> conditions() {
    return conditions;
  }
}
