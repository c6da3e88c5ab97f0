package dev.stasis.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One Stasis role ({@code stasis operator} or {@code stasis agent}) in a JVM of its own, as on a
 * cluster, so that its CPU time, resident memory and heap are its own. Heap use is read from the
 * JVM's GC log (occupancy before and after each collection) and once more at the end of each
 * measurement window, so reading it costs the role nothing while it works.
 */
final class RoleProcess implements AutoCloseable {
  private static final Pattern GC_LINE = Pattern.compile("(\\d+)M->(\\d+)M\\((\\d+)M\\)");
  // GC.heap_info: G1's "garbage-first heap total ..K, used ..K", the serial collector's young and
  // tenured generations one line each (Metaspace is not heap).
  private static final Pattern HEAP_USED = Pattern.compile("(?:generation|heap)\\s+total \\d+K, used (\\d+)K");
  private static final double CLOCK_TICKS = 100.0; // USER_HZ on Linux

  private final String role;
  private final Process process;
  private final Path gcLog;
  private long windowStartOffset;
  private double windowStartCpu;

  private RoleProcess(String role, Process process, Path gcLog) {
    this.role = role;
    this.process = process;
    this.gcLog = gcLog;
  }

  /** Starts {@code dev.stasis.cli.Main <args>} with the jar's runtime class path. */
  static RoleProcess start(String role, List<String> jvmOptions, List<String> args, Path logDir) throws IOException {
    Path gcLog = logDir.resolve(role + "-gc.log");
    Files.deleteIfExists(gcLog);
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.add("-Xlog:gc:file=" + gcLog);
    command.add("-cp");
    command.add(System.getProperty("stasis.runtimeClasspath"));
    command.add("dev.stasis.cli.Main");
    command.addAll(args);
    Process process = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(logDir.resolve(role + ".log").toFile()).start();
    return new RoleProcess(role, process, gcLog);
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** Starts a measurement window: CPU time from here, peak RSS and heap reset. */
  void startWindow() throws IOException {
    // Writing 5 to clear_refs resets the kernel's peak resident set size (VmHWM) of the process.
    Files.writeString(Path.of("/proc", Long.toString(pid()), "clear_refs"), "5");
    windowStartCpu = cpuSeconds();
    windowStartOffset = Files.exists(gcLog) ? Files.size(gcLog) : 0;
  }

  /** What the role used since {@link #startWindow()}. */
  Usage endWindow() throws IOException, InterruptedException {
    double cpu = cpuSeconds() - windowStartCpu;
    long peakRssKiB = statusField("VmHWM");
    long heapPeakMiB = 0;
    long liveMiB = 0;
    int collections = 0;
    String log = readFrom(gcLog, windowStartOffset);
    for (String line : log.split("\n")) {
      Matcher m = GC_LINE.matcher(line);
      if (m.find()) {
        collections++;
        heapPeakMiB = Math.max(heapPeakMiB, Long.parseLong(m.group(1)));
        liveMiB = Math.max(liveMiB, Long.parseLong(m.group(2)));
      }
    }
    long usedNowMiB = heapUsedNowKiB() / 1024;
    return new Usage(cpu, peakRssKiB / 1024.0, Math.max(heapPeakMiB, usedNowMiB), liveMiB, collections);
  }

  /**
   * @param heapPeakMiB most heap in use at any point in the window (before a collection, or at its end)
   * @param liveAfterGcMiB most heap still in use after a collection: what the role really kept
   */
  record Usage(double cpuSeconds, double peakRssMiB, long heapPeakMiB, long liveAfterGcMiB, int collections) {}

  private double cpuSeconds() throws IOException {
    return cpuSeconds(pid());
  }

  /** User + system CPU time a process has used so far. */
  static double cpuSeconds(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / CLOCK_TICKS;
  }

  private long statusField(String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid()), "status"))) {
      if (line.startsWith(field + ":")) {
        return Long.parseLong(line.replaceAll("\\D", ""));
      }
    }
    throw new IOException(field + " missing from /proc/" + pid() + "/status");
  }

  private long heapUsedNowKiB() throws IOException, InterruptedException {
    Process jcmd = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
        Long.toString(pid()), "GC.heap_info").redirectErrorStream(true).start();
    String out = new String(jcmd.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    jcmd.waitFor(30, TimeUnit.SECONDS);
    long usedKiB = 0;
    for (Matcher m = HEAP_USED.matcher(out); m.find(); ) {
      usedKiB += Long.parseLong(m.group(1));
    }
    return usedKiB;
  }

  private static String readFrom(Path file, long offset) throws IOException {
    if (!Files.exists(file)) {
      return "";
    }
    byte[] bytes = Files.readAllBytes(file);
    return new String(bytes, (int) Math.min(offset, bytes.length), (int) Math.max(0, bytes.length - offset),
        StandardCharsets.UTF_8);
  }

  /** SIGTERM lets the role shut down cleanly; SIGKILL if it does not within 15 s. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(15, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public String toString() {
    return role + " (PID " + pid() + ")";
  }
}
