package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/**
 * How far the work of a Checkpoint or Restore (and of anything else an agent moves bytes for) has
 * come: its step, and the bytes done of those expected. The agent writes it while the bytes move,
 * at most every few seconds, and leaves the last one in place when the work ends.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProgressStatus {
  @JsonPropertyDescription("What the agent is doing: Dumping, Uploading, Downloading, Restoring, Pushing.")
  public String step;

  @JsonPropertyDescription("Bytes of this step done so far.")
  public Long bytesDone;

  @JsonPropertyDescription("Bytes the step is expected to move: the process' memory before the dump, the"
      + " kubelet's archive, the stored archive.")
  public Long bytesExpected;

  @JsonPropertyDescription("bytesDone of bytesExpected, in whole percent (99% at most until the work is done),"
      + " for kubectl get's PROGRESS column.")
  public String percent;

  @JsonPropertyDescription("When the agent last wrote this progress (RFC 3339).")
  public String updateTime;
}
