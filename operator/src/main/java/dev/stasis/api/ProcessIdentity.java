package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.Objects;

/**
 * A process on a node as an identity, never a bare number: a PID the kernel gave to another process
 * since has another start time, and one from before a reboot another boot id.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProcessIdentity {
  @JsonPropertyDescription("The node the process runs on.")
  public String node;

  @JsonPropertyDescription("PID on the node.")
  public Integer pid;

  @JsonPropertyDescription("When the process started, in clock ticks after the node booted (/proc/PID/stat, field 22).")
  public Long startTicks;

  @JsonPropertyDescription("The node's boot the process started in (/proc/sys/kernel/random/boot_id).")
  public String bootId;

  @JsonPropertyDescription("When the process started (RFC 3339, to the second), for people.")
  public String startTime;

  /** Whether both name the same process: same PID, start and boot. */
  public boolean sameProcessAs(ProcessIdentity other) {
    return other != null && Objects.equals(pid, other.pid)
        && Objects.equals(startTicks, other.startTicks) && Objects.equals(bootId, other.bootId);
  }
}
