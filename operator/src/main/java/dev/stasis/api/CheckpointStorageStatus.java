package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStorageStatus extends ObservedStatus {
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

  /**
   * Available is Ready; Unavailable is Stalled with the reason (the operator checks again every few
   * seconds, but until the bucket, path or credentials are fixed nothing can be stored there).
   */
  @Override
  public Readiness readiness() {
    if (AVAILABLE.equals(phase)) {
      return Readiness.ready("Checked", message);
    }
    if (UNAVAILABLE.equals(phase)) {
      return Readiness.stalled(reason, message);
    }
    return Readiness.reconciling("Checking", "the operator has not checked the storage yet");
  }
}
