package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.Objects;

/**
 * How far the work of a Checkpoint or Restore (and of anything else an agent moves bytes for) has
 * come: its step, and the bytes done of those expected. The agent writes it while the bytes move,
 * at most every few seconds, and leaves the last one in place when the work ends.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProgressStatus {
  public static final String DUMPING = "Dumping";
  public static final String UPLOADING = "Uploading";
  public static final String DOWNLOADING = "Downloading";
  public static final String RESTORING = "Restoring";
  public static final String PUSHING = "Pushing";

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

  /** {@code done} of {@code expected} bytes of {@code step} now; no percent while nothing is expected. */
  public static ProgressStatus of(String step, long done, long expected, String now) {
    ProgressStatus progress = new ProgressStatus();
    progress.step = step;
    progress.bytesDone = done;
    progress.bytesExpected = expected > 0 ? expected : null;
    progress.percent = expected > 0 ? Math.min(99, done * 100 / expected) + "%" : null;
    progress.updateTime = now;
    return progress;
  }

  /** Whether {@code other} says the same of the work, whenever it was written. */
  public boolean sameAs(ProgressStatus other) {
    return other != null && Objects.equals(step, other.step) && Objects.equals(bytesDone,
        other.bytesDone) && Objects.equals(bytesExpected, other.bytesExpected);
  }

  /** A copy for work that ended well: 100%, whatever the estimate of the bytes said. */
  public ProgressStatus finished() {
    ProgressStatus done = new ProgressStatus();
    done.step = step;
    done.bytesDone = bytesDone;
    done.bytesExpected = bytesExpected;
    done.percent = "100%";
    done.updateTime = updateTime;
    return done;
  }
}
