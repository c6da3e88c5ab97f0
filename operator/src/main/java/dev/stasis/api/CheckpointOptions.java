package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointOptions {
  public static final int DEFAULT_TIMEOUT_SECONDS = 600;

  @Default("true")
  @JsonPropertyDescription("Keep the workload running after the checkpoint. When false, the workload is ended only after its archive is stored.")
  public Boolean leaveRunning;

  @JsonPropertyDescription("Checkpoint established TCP connections (CRIU --tcp-established). Such a checkpoint can only be restored on its source node.")
  public Boolean tcpEstablished;

  @JsonPropertyDescription("Checkpoint file locks (CRIU --file-locks).")
  public Boolean fileLocks;

  @JsonPropertyDescription("The process tree is attached to a terminal/session it does not own (CRIU --shell-job).")
  public Boolean shellJob;

  @JsonPropertyDescription("Mount points the process uses that are not part of its mount namespace, as CRIU --external values (e.g. mnt[/data]:data).")
  public List<String> externalMounts;

  @Min(1)
  @Max(86400)
  @JsonPropertyDescription("Give up on the checkpoint after this many seconds (default 600).")
  public Integer timeoutSeconds;

  public boolean leaveRunning() {
    return leaveRunning == null || leaveRunning;
  }

  public int timeoutSecondsOrDefault() {
    return timeoutSeconds != null ? timeoutSeconds : DEFAULT_TIMEOUT_SECONDS;
  }
}
