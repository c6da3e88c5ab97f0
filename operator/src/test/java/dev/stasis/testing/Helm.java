package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Path;

/** The helm that scripts/install-helm.sh builds, run as a user would run it. */
public final class Helm {
  private final Tool helm;

  /** For commands that talk to no cluster (template, lint). */
  public Helm() {
    this.helm = new Tool("helm");
  }

  public Helm(Path kubeconfig) {
    this.helm = new Tool("helm", "--kubeconfig=" + kubeconfig);
  }

  public Tool.Result run(String... args) throws IOException, InterruptedException {
    return helm.run(null, args);
  }
}
