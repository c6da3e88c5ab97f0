package dev.stasis.criu;

import java.util.concurrent.CompletableFuture;

/**
 * A restored process tree, still parented by the CRIU process that restored it. {@link #onExit()}
 * completes once the tree has ended and CRIU has reaped it. CRIU exits 0 whatever the tree's exit
 * status was, so the tree's own exit code cannot be known.
 */
public final class RestoredTree {
  private final int pid;
  private final Process criu;
  private final CriuLog log;

  RestoredTree(int pid, Process criu, CriuLog log) {
    this.pid = pid;
    this.criu = criu;
    this.log = log;
  }

  /** PID of the tree's root, as seen from the node. */
  public int pid() {
    return pid;
  }

  public boolean isRunning() {
    return criu.isAlive();
  }

  public CompletableFuture<Void> onExit() {
    return criu.onExit().thenApply(p -> null);
  }

  public CriuLog log() {
    return log;
  }
}
