package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

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
    try {
      new ProcessBuilder("kill", "-KILL", Long.toString(pid)).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(5, TimeUnit.SECONDS);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
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
