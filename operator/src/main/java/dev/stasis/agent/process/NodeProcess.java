package dev.stasis.agent.process;

import com.sun.jna.Library;
import com.sun.jna.Native;
import dev.stasis.api.ProcessIdentity;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Optional;

/**
 * A process on this node as an identity, never a bare number: its PID, when it started (clock
 * ticks after boot, /proc/PID/stat field 22) and the boot it started in.
 */
public record NodeProcess(long pid, long startTicks, String bootId) {
  private static final Path PROC = Path.of("/proc");

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
    int SC_CLK_TCK = 2;

    long sysconf(int name);
  }
}
