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

  /** Runs kubectl with {@code stdin} (may be null) and returns its exit code and merged output. */
  public Tool.Result runWithInput(String stdin, String... args) throws IOException, InterruptedException {
    return kubectl.run(stdin, args);
  }
}
