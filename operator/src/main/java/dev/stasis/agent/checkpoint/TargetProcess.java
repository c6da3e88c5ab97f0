package dev.stasis.agent.checkpoint;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.process.NodeProcess;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.ProcessIdentity;
import java.util.Optional;

/**
 * The process a process checkpoint is of: the one its spec pins, else the one its first attempt
 * found under the PID ({@code status.process}). Every step that would touch the PID checks that it
 * still names that process.
 */
final class TargetProcess {
  private TargetProcess() {}

  /**
   * The process under the target's PID, if it is the one this checkpoint is of: a PID whose
   * process ended may have been given to another, which is never touched.
   */
  static NodeProcess require(Checkpoint checkpoint) throws WorkFailure {
    int pid = checkpoint.getSpec().target.process.pid;
    ProcessIdentity recorded = checkpoint.getStatus().process;
    Optional<NodeProcess> now = NodeProcess.find(pid);
    if (now.isEmpty()) {
      throw new WorkFailure("ProcessNotFound", "no process with PID " + pid + " runs on this node"
          + (recorded == null ? ": check spec.target.process.pid and node" : " any more: the process this checkpoint"
              + " is of (" + started(recorded) + ") has ended"));
    }
    if (recorded != null && !now.get().toStatus().sameProcessAs(recorded)) {
      throw changed(checkpoint, pid);
    }
    return now.get();
  }

  static WorkFailure changed(Checkpoint checkpoint, int pid) {
    ProcessIdentity recorded = checkpoint.getStatus().process;
    Optional<NodeProcess> now = NodeProcess.find(pid);
    String rebooted = now.filter(p -> !p.bootId().equals(recorded.bootId)).isPresent() ? " (the node has rebooted since)" : "";
    return new WorkFailure("ProcessChanged", "PID " + pid + " no longer names the process this checkpoint is of ("
        + started(recorded) + ", boot " + recorded.bootId + "): that process has ended" + rebooted
        + ", and the PID now belongs to " + now.map(p -> "a process started " + p.toStatus().startTime).orElse("no process")
        + ", which was not touched. Create a new Checkpoint if that process is the one to checkpoint");
  }

  private static String started(ProcessIdentity process) {
    return process.startTime != null ? "started " + process.startTime : "started before the node's last boot";
  }
}
