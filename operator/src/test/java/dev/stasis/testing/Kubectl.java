package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Path;

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

  /** Runs kubectl with {@code stdin} (may be null) and returns its exit code and merged output. */
  public Tool.Result runWithInput(String stdin, String... args) throws IOException, InterruptedException {
    return kubectl.run(stdin, args);
  }
}
