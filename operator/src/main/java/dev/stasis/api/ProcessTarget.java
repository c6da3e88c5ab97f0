package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import java.util.Optional;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ProcessTarget {
  @Required
  @JsonPropertyDescription("Node the process runs on (the name its agent registered as NodeProfile).")
  public String node;

  @Required
  @Min(2)
  @JsonPropertyDescription("PID of the root of the process tree, as seen from the node.")
  public Integer pid;

  @JsonPropertyDescription("Optional, with bootId: only the process under the PID that started at this moment"
      + " (clock ticks after boot, as status.process.startTicks says). A CheckpointSchedule sets both on the"
      + " Checkpoints it creates, to the process its first checkpoint found; once that process has ended they"
      + " fail ProcessChanged instead of taking whatever got its PID.")
  public Long startTicks;

  @JsonPropertyDescription("Optional, with startTicks: the node's boot the process started in.")
  public String bootId;

  public ProcessTarget() {}

  public ProcessTarget(String node, Integer pid) {
    this.node = node;
    this.pid = pid;
  }

  /** This target, of only the process {@code identity} names. */
  public ProcessTarget pinnedTo(ProcessIdentity identity) {
    ProcessTarget pinned = new ProcessTarget(node, pid);
    pinned.startTicks = identity.startTicks;
    pinned.bootId = identity.bootId;
    return pinned;
  }

  /** The process this target is pinned to, if it is. */
  public Optional<ProcessIdentity> pinned() {
    if (startTicks == null || bootId == null) {
      return Optional.empty();
    }
    ProcessIdentity identity = new ProcessIdentity();
    identity.pid = pid;
    identity.startTicks = startTicks;
    identity.bootId = bootId;
    return Optional.of(identity);
  }
}
