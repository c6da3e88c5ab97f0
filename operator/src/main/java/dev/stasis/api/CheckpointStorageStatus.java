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
  /** What the storage holds, as the last garbage collection found it. */
  public Usage usage;

  /**
   * What the storage holds and what that stores, summed up by the garbage collector's pass over
   * the storage (no listing of its own), so as fresh as {@link #computedAt}.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Usage {
    /** Bytes of the objects of the storage's checkpoints: archives, manifests, chunk indexes, and chunks. */
    public Long storedBytes;
    /**
     * The checkpoints' size before deduplication and compression: over every manifest in the
     * storage, its archive's bytes before compression plus its chunked memory images' bytes.
     */
    public Long referencedBytes;
    /**
     * referencedBytes / storedBytes, two decimals ("4.80"): how many bytes of checkpoints each
     * stored byte holds, by deduplication and compression together.
     */
    public String deduplicationRatio;
    /** Manifests (one per process checkpoint, one per container of a pod checkpoint). */
    public Integer manifests;
    /** Chunk objects of deduplicated checkpoints, in all namespaces. */
    public Long chunks;
    /** The storage's metadata.generation when this was computed. */
    public Long observedGeneration;
    /** When the pass that computed it ran. */
    public String computedAt;
  }

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
