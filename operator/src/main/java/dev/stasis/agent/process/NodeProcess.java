package dev.stasis.agent.process;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import dev.stasis.api.ProcessIdentity;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A process on this node as an identity, never a bare number: its PID, when it started (clock
 * ticks after boot, /proc/PID/stat field 22) and the boot it started in. Signals go through a
 * pidfd: the PID is opened, the process behind the descriptor is checked against this identity,
 * and the signal is sent through the descriptor, which keeps naming that process even if it ends
 * and its PID is given to another. So a signal reaches this process or none.
 */
public record NodeProcess(long pid, long startTicks, String bootId) {
  private static final Logger log = LoggerFactory.getLogger(NodeProcess.class);
  private static final Path PROC = Path.of("/proc");

  /** The signal the agent sends: to end a tree that runs elsewhere now (agent.fencing). */
  public enum Signal {
    KILL(9);

    final int number; // the same on x86_64 and arm64

    Signal(int number) {
      this.number = number;
    }
  }

  /** The process that has {@code pid} now; empty when there is none (or it is a zombie). */
  public static Optional<NodeProcess> find(long pid) {
    String[] stat = statFields(pid);
    if (stat.length < 20 || stat[0].equals("Z") || stat[0].equals("X")) {
      return Optional.empty();
    }
    return Optional.of(new NodeProcess(pid, Long.parseLong(stat[19]), currentBootId()));
  }

  /** The process a status recorded. */
  public static NodeProcess of(ProcessIdentity recorded) {
    return new NodeProcess(recorded.pid, recorded.startTicks, recorded.bootId);
  }

  public ProcessIdentity toStatus() {
    ProcessIdentity identity = new ProcessIdentity();
    identity.pid = Math.toIntExact(pid);
    identity.startTicks = startTicks;
    identity.bootId = bootId;
    identity.startTime = bootId.equals(currentBootId()) ? startTime().map(Instant::toString).orElse(null) : null;
    return identity;
  }

  /** Whether this very process still runs: its PID names it, not another. */
  public boolean isRunning() {
    return find(pid).filter(this::equals).isPresent();
  }

  /**
   * Sends {@code signal} to this process, and to no other: false when it is gone (its PID may
   * belong to another process now, which is left alone).
   */
  public boolean signal(Signal signal) {
    if (!bootId.equals(currentBootId())) {
      return false;
    }
    int fd;
    try {
      fd = (int) LibC.C.syscall(LibC.PIDFD_OPEN, pid, 0L); // syscall(2) reads each argument as a long
    } catch (LastErrorException e) {
      return false; // ESRCH: no process has that PID
    }
    try {
      // The descriptor names whatever has the PID now: only once it is known to be this process is it used.
      if (!isRunning()) {
        return false;
      }
      LibC.C.syscall(LibC.PIDFD_SEND_SIGNAL, (long) fd, (long) signal.number, 0L, 0L);
      return true;
    } catch (LastErrorException e) {
      log.debug("pidfd_send_signal {} to {} failed: {}", signal, pid, e.getMessage());
      return false; // it ended after the check
    } finally {
      LibC.C.close(fd);
    }
  }

  /** When it started, from the node's boot time and its start in clock ticks. */
  private Optional<Instant> startTime() {
    try {
      for (String line : Files.readAllLines(PROC.resolve("stat"))) {
        if (line.startsWith("btime ")) {
          long bootSeconds = Long.parseLong(line.substring(6).trim());
          long ticksPerSecond = LibC.C.sysconf(LibC.SC_CLK_TCK);
          return Optional.of(Instant.ofEpochSecond(bootSeconds + startTicks / ticksPerSecond));
        }
      }
    } catch (IOException | RuntimeException e) {
      // informative only
    }
    return Optional.empty();
  }

  /** Fields of /proc/PID/stat from the state on (field 3), after the command name, which may hold spaces and parentheses. */
  static String[] statFields(long pid) {
    try {
      String stat = Files.readString(PROC.resolve(pid + "/stat"));
      return stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    } catch (IOException | StringIndexOutOfBoundsException e) {
      return new String[0];
    }
  }

  private static String currentBootId() {
    try {
      return Files.readString(PROC.resolve("sys/kernel/random/boot_id")).trim();
    } catch (IOException e) {
      throw new IllegalStateException("cannot read this node's boot id: " + e.getMessage(), e);
    }
  }

  /** The C library calls Java 17 has no API for. */
  private interface LibC extends Library {
    LibC C = Native.load("c", LibC.class);
    // The same on every 64-bit architecture Linux added them to at once (x86_64, arm64).
    long PIDFD_SEND_SIGNAL = 424;
    long PIDFD_OPEN = 434;
    int SC_CLK_TCK = 2;

    long syscall(long number, Object... args) throws LastErrorException;

    int close(int fd);

    long sysconf(int name);
  }
}
