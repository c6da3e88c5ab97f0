package dev.stasis.agent.process;

import dev.stasis.agent.WorkFailure;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.criu.TreeOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A process tree on this node, seen through /proc by PID: what may be checkpointed at all, and who
 * belongs to a tree. Signals go to identities, never to these numbers ({@link NodeProcess}).
 */
public final class ProcessTree {
  private static final Path PROC = Path.of("/proc");
  private static final long PAGE_BYTES = 4096;

  private ProcessTree() {}

  /** Refuses PIDs that do not exist or that must never be dumped (init, kernel threads, the agent). */
  public static void requireCheckpointable(int pid) throws WorkFailure {
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

  /** What CRIU must be told of the tree, as the checkpoint's spec says: the same at dump and at restore. */
  public static TreeOptions options(CheckpointOptions spec) {
    return new TreeOptions(Boolean.TRUE.equals(spec.tcpEstablished), Boolean.TRUE.equals(spec.fileLocks),
        Boolean.TRUE.equals(spec.shellJob), spec.externalMounts);
  }

  /** The root and every descendant, root first. */
  public static List<Long> members(long root) {
    List<Long> pids = new ArrayList<>();
    collect(root, pids);
    return pids;
  }

  /**
   * About what CRIU will write of the memory of {@code members}: their anonymous memory (pages no
   * file holds, from /proc/PID/smaps_rollup; without it, statm's resident minus shared pages).
   * The expected bytes of a checkpoint's progress; 0 when /proc tells nothing.
   */
  public static long memoryBytes(List<Long> members) {
    long bytes = 0;
    for (long pid : members) {
      bytes += anonymousBytes(pid);
    }
    return bytes;
  }

  private static long anonymousBytes(long pid) {
    Path dir = PROC.resolve(Long.toString(pid));
    try {
      for (String line : Files.readAllLines(dir.resolve("smaps_rollup"))) {
        if (line.startsWith("Anonymous:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      // an older kernel, or the process ended: statm below
    }
    try {
      String[] pages = Files.readString(dir.resolve("statm")).trim().split("\\s+");
      return Math.max(0, Long.parseLong(pages[1]) - Long.parseLong(pages[2])) * PAGE_BYTES;
    } catch (IOException | RuntimeException e) {
      return 0; // ended meanwhile: nothing to dump of it
    }
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

  private static long parentOf(long pid) {
    String[] f = NodeProcess.statFields(pid);
    return f.length > 1 ? Long.parseLong(f[1]) : 0;
  }
}
