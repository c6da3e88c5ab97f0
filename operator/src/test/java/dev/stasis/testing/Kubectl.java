package dev.stasis.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** The kubectl that scripts/control-plane.sh builds, run as a user would run it. */
public final class Kubectl {
  private final Tool kubectl;

  public Kubectl(Path kubeconfig) {
    this.kubectl = new Tool("kubectl", "--kubeconfig=" + kubeconfig);
  }

  public Tool.Result run(String... args) throws IOException, InterruptedException {
    return runWithInput(null, args);
  }

  /**
   * {@code kubectl wait --for=condition=<condition> <resource>} in the current namespace; when it times
   * out, the failure shows the object and the namespace's Events, which say why.
   */
  public void waitFor(String condition, String resource, String timeout) throws IOException, InterruptedException {
    Tool.Result waited = run("wait", "--for=condition=" + condition, resource, "--timeout=" + timeout);
    if (waited.exitCode() != 0) {
      throw new AssertionError(resource + " not " + condition + " within " + timeout + ": " + waited.output()
          + "\n" + run("get", resource, "-o", "yaml").output()
          + "\n" + run("get", "events", "--sort-by=.lastTimestamp").output());
    }
  }

  /** {@code kubectl <args>} left running (a {@code get -w}): the lines it printed, until it is closed. */
  public Watching watch(String... args) throws IOException {
    return new Watching(kubectl.start(args));
  }

  /** A kubectl this test started, and what it printed so far. */
  public static final class Watching implements AutoCloseable {
    private final Process process;
    private final List<String> lines = new CopyOnWriteArrayList<>();

    Watching(Process process) {
      this.process = process;
      Thread reader = new Thread(() -> {
        try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
            StandardCharsets.UTF_8))) {
          out.lines().forEach(lines::add);
        } catch (IOException | UncheckedIOException e) {
          // ended
        }
      }, "kubectl-watch");
      reader.setDaemon(true);
      reader.start();
    }

    public List<String> lines() {
      return List.copyOf(lines);
    }

    /** Ends the kubectl (by its own handle: the process this test started). */
    @Override
    public void close() throws InterruptedException {
      process.destroy();
      process.waitFor();
    }
  }

  /** Runs kubectl with {@code stdin} (may be null) and returns its exit code and merged output. */
  public Tool.Result runWithInput(String stdin, String... args) throws IOException, InterruptedException {
    return kubectl.run(stdin, args);
  }
}
