package dev.stasis.testing;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The C test workloads in src/test/workloads, compiled once per build, and started the way CRIU can
 * move them: init and session leader of their own PID namespace (ENVIRONMENT.md), so restored PIDs
 * never collide with anything on the machine.
 */
public final class Workloads {
  private static final Path SOURCES = Path.of("src/test/workloads");
  private static final Path BINARIES = Path.of("target/workloads");

  private Workloads() {}

  public static Path binary(String name) throws IOException, InterruptedException {
    return compile(name, BINARIES);
  }

  /** Linked statically, as the only file of a container image (see {@link WorkloadImages}). */
  public static Path staticBinary(String name) throws IOException, InterruptedException {
    return compile(name, BINARIES.resolve("static"), "-static");
  }

  private static synchronized Path compile(String name, Path dir, String... flags)
      throws IOException, InterruptedException {
    Path binary = dir.resolve(name).toAbsolutePath();
    Path source = SOURCES.resolve(name + ".c");
    if (!Files.exists(binary) || Files.getLastModifiedTime(binary).compareTo(Files.getLastModifiedTime(source)) < 0) {
      Files.createDirectories(dir);
      List<String> command = new ArrayList<>(List.of("gcc", "-O2"));
      command.addAll(List.of(flags));
      command.addAll(List.of("-o", binary.toString(), source.toString()));
      Process gcc = new ProcessBuilder(command).redirectErrorStream(true).start();
      String output = new String(gcc.getInputStream().readAllBytes());
      if (gcc.waitFor() != 0) {
        throw new IOException("gcc " + source + " failed:\n" + output);
      }
    }
    return binary;
  }

  /** Starts {@code name args...} as PID 1 of a new PID namespace, in its own session. */
  public static Workload startInPidNamespace(String name, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of(binary(name).toString()));
    command.addAll(List.of(args));
    return startCommandInPidNamespace(command);
  }

  /**
   * Starts {@code command} (a program that is not one of these workloads, such as LAMMPS) as PID 1
   * of a new PID namespace, in its own session; a wrapper script that execs its program leaves the
   * program as that PID 1.
   */
  public static Workload startCommandInPidNamespace(List<String> program) throws IOException, InterruptedException {
    String name = Path.of(program.get(0)).getFileName().toString();
    List<String> command = new ArrayList<>(List.of("setsid", "unshare", "--pid", "--fork", "setsid"));
    command.addAll(program);
    Process unshare = new ProcessBuilder(command)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      List<Long> children = children(unshare.pid());
      if (!children.isEmpty()) {
        return new Workload(unshare, children.get(0));
      }
      Thread.sleep(10);
    }
    unshare.destroyForcibly();
    throw new IOException("the workload " + name + " did not start within 10s");
  }

  /**
   * Starts {@code name args...} with exactly the PID {@code pid} once that PID is free, in a session
   * of its own (src/test/workloads/spawn_at.c): the kernel giving an ended process's PID to another.
   */
  public static Workload startAt(long pid, String name, String... args) throws IOException, InterruptedException {
    Path stat = Path.of("/proc", Long.toString(pid));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (Files.exists(stat)) {
      if (System.nanoTime() > deadline) {
        throw new IOException("PID " + pid + " is still taken after 10s");
      }
      Thread.sleep(10);
    }
    List<String> command = new ArrayList<>(List.of(binary("spawn_at").toString(), Long.toString(pid),
        binary(name).toString()));
    command.addAll(List.of(args));
    Process spawner = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    while (!children(spawner.pid()).contains(pid)) {
      if (!spawner.isAlive() || System.nanoTime() > deadline) {
        spawner.destroyForcibly();
        throw new IOException("could not start " + name + " as PID " + pid);
      }
      Thread.sleep(10);
    }
    return new Workload(spawner, pid);
  }

  public static List<Long> children(long pid) {
    List<Long> result = new ArrayList<>();
    try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : tasks.toList()) {
        for (String child : Files.readString(task.resolve("children")).trim().split("\\s+")) {
          if (!child.isEmpty()) {
            result.add(Long.parseLong(child));
          }
        }
      }
    } catch (IOException e) {
      // the process is gone
    }
    return result;
  }

  public static boolean isAlive(long pid) {
    Path stat = Path.of("/proc", Long.toString(pid), "stat");
    try {
      String s = Files.readString(stat);
      String state = s.substring(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
      return !state.equals("Z") && !state.equals("X");
    } catch (IOException e) {
      return false;
    }
  }

  /** Ends a PID this test started (or restored), by PID, with SIGKILL: a namespace init ignores SIGTERM. */
  public static void kill(long pid) {
    signal(pid, "KILL");
  }

  /** Sends {@code signal} (a name: USR1, KILL) to a PID this test started (or restored). */
  public static void signal(long pid, String signal) {
    try {
      new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(5, TimeUnit.SECONDS);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * The number a counter workload keeps in {@code file}. The counter rewrites the file every 100 ms
   * (open, truncate, write), so a read may catch it empty: read again for up to a second. -1 when
   * there is no number at all.
   */
  public static long count(Path file) {
    for (int attempt = 0; attempt < 50; attempt++) {
      try {
        String text = Files.readString(file).trim();
        if (!text.isEmpty()) {
          return Long.parseLong(text);
        }
      } catch (IOException | NumberFormatException e) {
        // not there yet, or caught mid-rewrite
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return -1;
      }
    }
    return -1;
  }

  /**
   * Call once the counter that wrote {@code out} is gone and a restore of it Completed: the file is
   * rewritten by the restored counter only, from the value it had at the checkpoint (between the
   * counts seen before and after it was taken), and goes on counting.
   */
  public static void awaitCountingOnFrom(Path out, long before, long after, Duration timeout) throws IOException {
    Files.writeString(out, "0"); // the restored counter overwrites it with its next count
    await("the restored counter writes again").atMost(timeout).until(() -> count(out) > 0);
    long resumed = count(out);
    org.assertj.core.api.Assertions.assertThat(resumed).as("resumed from the checkpointed count")
        .isBetween(before, after + 30);
    await("the restored counter goes on counting").atMost(timeout).until(() -> count(out) > resumed + 2);
  }
  /** Asks memcounter {@code pid} (writing to {@code out}) for the checksum of all its memory, and waits for its answer. */
  public static String memorySum(long pid, Path out, Duration timeout) throws IOException {
    Path sum = Path.of(out + ".sum");
    Files.deleteIfExists(sum);
    signal(pid, "USR2");
    await("memcounter's checksum").atMost(timeout).until(() -> Files.exists(sum));
    return Files.readString(sum).trim();
  }


  /** The lines a writer workload has appended to {@code file} so far; 0 before it wrote any. */
  public static long lines(Path file) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      return 0;
    }
  }

  /**
   * What {@code read} gives once it no longer changes, such as the counts of workloads that were just
   * ended: a process's last write may land after it was signalled.
   */
  public static <T> T settled(Supplier<T> read) {
    AtomicReference<T> last = new AtomicReference<>(read.get());
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(10))
        .until(() -> {
          T now = read.get();
          return Objects.equals(now, last.getAndSet(now));
        });
    return last.get();
  }

  /** Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot. */
  public static long startTicks(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[19]);
  }

  /** A PID no process has now (the highest free one below 4,000,000). */
  public static long unusedPid() {
    long pid = 4_000_000;
    while (Files.exists(Path.of("/proc", Long.toString(pid)))) {
      pid--;
    }
    return pid;
  }

  /** A workload started by a test: the {@code unshare} launcher and the namespace's init inside it. */
  public record Workload(Process launcher, long pid) implements AutoCloseable {
    @Override
    public void close() {
      Workloads.kill(pid);
      launcher.destroyForcibly();
      try {
        launcher.waitFor(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
