package dev.stasis.criu;

import java.util.concurrent.CompletableFuture;

/**
 * A restored process tree, still parented by the CRIU process that restored it. {@link #onExit()}
 * completes with CRIU's exit code once the tree has ended and CRIU has reaped it.
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

  public CompletableFuture<Integer> onExit() {
    return criu.onExit().thenApply(Process::exitValue);
  }

  public CriuLog log() {
    return log;
  }
}
