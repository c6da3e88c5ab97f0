package dev.stasis.testing;

import java.io.IOException;

/** The helm that scripts/install-helm.sh builds, run as a user would run it. */
public final class Helm {
  private final Tool helm = new Tool("helm");

  public Tool.Result run(String... args) throws IOException, InterruptedException {
    return helm.run(null, args);
  }
}
