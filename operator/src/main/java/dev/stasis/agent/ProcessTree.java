package dev.stasis.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A process tree on this node, seen through /proc. The agent only ever signals the PIDs of a tree
 * it was asked to checkpoint, and only to end it after its checkpoint is stored or to resume it.
 */
final class ProcessTree {
  private static final Path PROC = Path.of("/proc");

  private ProcessTree() {}

  /** Refuses PIDs that do not exist or that must never be dumped (init, kernel threads, the agent). */
  static void requireCheckpointable(int pid) throws WorkFailure {
    Path dir = PROC.resolve(Integer.toString(pid));
    if (!Files.isDirectory(dir)) {
      throw new WorkFailure("ProcessNotFound",
          "no process with PID " + pid + " runs on this node: check spec.target.process.pid and node");
    }
    if (pid == 1) {
      throw new WorkFailure("PidNotAllowed", "PID 1 is the node's init and cannot be checkpointed");
    }
    if (!Files.exists(dir.resolve("exe"), java.nio.file.LinkOption.NOFOLLOW_LINKS) || isKernelThread(pid)) {
      throw new WorkFailure("PidNotAllowed", "PID " + pid + " is a kernel thread and cannot be checkpointed");
    }
    for (long self = ProcessHandle.current().pid(); self > 0; self = parentOf(self)) {
      if (self == pid) {
        throw new WorkFailure("PidNotAllowed",
            "PID " + pid + " is the Stasis agent itself or one of its parents and cannot be checkpointed");
      }
    }
  }

  /** The root and every descendant, root first. */
  static List<Long> members(long root) {
    List<Long> pids = new ArrayList<>();
    collect(root, pids);
    return pids;
  }

  static void signal(List<Long> pids, String signal) {
    for (long pid : pids) {
      try {
        new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
      } catch (IOException e) {
        throw new IllegalStateException("cannot run kill: " + e.getMessage(), e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  static boolean isStopped(long pid) {
    return "T".equals(state(pid));
  }

  private static void collect(long pid, List<Long> into) {
    if (!Files.isDirectory(PROC.resolve(Long.toString(pid)))) {
      return;
    }
    into.add(pid);
    try (var tasks = Files.list(PROC.resolve(pid + "/task"))) {
      for (Path task : tasks.toList()) {
        String children = Files.readString(task.resolve("children")).trim();
        if (!children.isEmpty()) {
          for (String child : children.split("\\s+")) {
            collect(Long.parseLong(child), into);
          }
        }
      }
    } catch (IOException e) {
      // the process ended while we looked; what was collected stands
    }
  }

  private static boolean isKernelThread(int pid) {
    return parentOf(pid) == 2;
  }

  /** Fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
  private static String[] statFields(long pid) {
    try {
      String stat = Files.readString(PROC.resolve(pid + "/stat"));
      return stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    } catch (IOException | StringIndexOutOfBoundsException e) {
      return new String[0];
    }
  }

  private static String state(long pid) {
    String[] f = statFields(pid);
    return f.length > 0 ? f[0] : "";
  }

  private static long parentOf(long pid) {
    String[] f = statFields(pid);
    return f.length > 1 ? Long.parseLong(f[1]) : 0;
  }
}
