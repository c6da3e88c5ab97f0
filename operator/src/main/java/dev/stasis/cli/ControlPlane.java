package dev.stasis.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A local kube-apiserver and etcd, started and stopped by {@code scripts/control-plane.sh}, which
 * also builds them on first use (see the README). Stopping ends exactly the PIDs it started.
 */
public final class ControlPlane implements AutoCloseable {
  private final Path script;
  private final Path dir;

  private ControlPlane(Path script, Path dir) {
    this.script = script;
    this.dir = dir;
  }

  public static ControlPlane start(Path script, Path dir) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    run(script, "start", dir.toString());
    return new ControlPlane(script, dir);
  }

  public Path kubeconfig() {
    return dir.resolve("kubeconfig");
  }

  public Path dir() {
    return dir;
  }

  @Override
  public void close() {
    try {
      run(script, "stop", dir.toString());
    } catch (IOException | InterruptedException e) {
      throw new IllegalStateException("stopping the control plane in " + dir + " failed: " + e.getMessage(), e);
    }
  }

  private static void run(Path script, String... args) throws IOException, InterruptedException {
    String[] command = new String[args.length + 1];
    command[0] = script.toString();
    System.arraycopy(args, 0, command, 1, args.length);
    Path log = Files.createTempFile("control-plane", ".log");
    Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IOException(script + " " + String.join(" ", args) + " failed:\n" + Files.readString(log));
    }
    Files.deleteIfExists(log);
  }
}
