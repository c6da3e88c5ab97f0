package dev.stasis.criu;

import dev.stasis.disk.FreeSpace;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.nio.channels.ClosedByInterruptException;
import java.util.concurrent.TimeUnit;

/**
 * A {@code criu dump} under way ({@link Criu#startDump}). With a {@link PostDumpHook} the tree stays
 * frozen once dumped until {@link #decide}: the agent can copy what must travel with the checkpoint
 * while nothing changes it, and, for a tree to be ended, store the archive before CRIU ends the tree
 * under its network lock. Closing a dump nobody decided on resumes its tree.
 */
public final class RunningDump implements AutoCloseable {
  /** Once decided, CRIU only resumes or ends the tree and writes its statistics. */
  private static final Duration AFTER_DECISION = Duration.ofMinutes(1);
  /** Less room than this left in a failed dump's work folder: the dump ran out of it. */
  static final long NEARLY_FULL_BYTES = 1 << 20;

  private final Process criu;
  private final DumpOptions options;
  private final PostDumpHook hook;
  private final CriuLog log;
  private final long deadline;

  RunningDump(Process criu, DumpOptions options, PostDumpHook hook) {
    this.criu = criu;
    this.options = options;
    this.hook = hook;
    this.log = new CriuLog(options.workDir().resolve(DumpOptions.LOG_FILE));
    this.deadline = System.nanoTime() + options.timeout().toNanos();
  }

  /**
   * Returns once the tree is dumped, every image written and the tree still frozen (CRIU runs its
   * post-dump action). Fails as the dump failed, or when it did not get there within the dump's timeout.
   */
  public void awaitFrozen() throws CriuException {
    if (hook == null) {
      throw new IllegalStateException("this dump does not hold its tree frozen");
    }
    boolean frozen;
    try {
      frozen = hook.awaitFrozen(criu, Duration.ofNanos(deadline - System.nanoTime()));
    } catch (ClosedByInterruptException e) {
      stop();
      Thread.currentThread().interrupt();
      throw new CriuException("Interrupted", "the agent was stopped while criu dump ran", log.tail());
    } catch (IOException e) {
      stop();
      throw new CriuException("CriuHookFailed", "cannot hear from criu dump's post-dump action: " + e.getMessage(),
          log.tail());
    }
    if (frozen) {
      return;
    }
    if (criu.isAlive()) {
      stop();
      throw timedOut();
    }
    throw failure(criu.exitValue());
  }

  /** What CRIU does with the frozen tree (see {@link PostDumpHook.Decision}); only the first decision counts. */
  public void decide(PostDumpHook.Decision decision) throws CriuException {
    try {
      hook.decide(decision);
    } catch (IOException e) {
      throw new CriuException("CriuHookFailed", "cannot tell criu dump what to do with the frozen tree: "
          + e.getMessage(), log.tail());
    }
  }

  /**
   * Once CRIU has exited: what it did. A dump that holds its tree frozen must be decided first;
   * decided {@code RESUME}, it fails (CRIU counts the dump failed and resumed the tree).
   */
  public Criu.DumpResult awaitExit() throws CriuException {
    if (hook != null && !hook.isDecided()) {
      throw new IllegalStateException("decide what CRIU does with the frozen tree first");
    }
    long wait = hook == null ? deadline - System.nanoTime() : AFTER_DECISION.toNanos();
    try {
      if (!criu.waitFor(Math.max(0, wait), TimeUnit.NANOSECONDS)) {
        stop();
        throw timedOut();
      }
    } catch (InterruptedException e) {
      stop();
      Thread.currentThread().interrupt();
      throw new CriuException("Interrupted", "the agent was stopped while criu dump ran", log.tail());
    }
    if (criu.exitValue() != 0) {
      throw failure(criu.exitValue());
    }
    DumpStats stats;
    try {
      stats = DumpStats.read(options.workDir(), options.imagesDir());
    } catch (IOException e) {
      stats = null; // statistics are informative; a dump without them is still a good dump
    }
    return new Criu.DumpResult(stats, options.arguments());
  }

  /** Resumes a tree nobody decided on, and waits (a while) for CRIU to let go of it. */
  @Override
  public void close() {
    if (hook == null) {
      return;
    }
    try {
      if (criu.isAlive() && !hook.isDecided()) {
        hook.decide(PostDumpHook.Decision.RESUME);
      }
      if (!criu.waitFor(AFTER_DECISION.toSeconds(), TimeUnit.SECONDS)) {
        stop();
      }
    } catch (IOException e) {
      stop(); // CRIU releases the tree when it ends
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      hook.close();
    }
  }

  /** The hook's script first, if it runs: CRIU then resumes the tree as for a failed dump, and exits. */
  private void stop() {
    criu.descendants().forEach(ProcessHandle::destroyForcibly);
    Criu.stop(criu);
  }

  private CriuException timedOut() {
    return new CriuException("CriuTimeout",
        "criu dump did not finish within " + options.timeout().toSeconds()
            + "s; the process was released and keeps running. Raise spec.options.timeoutSeconds if it is large",
        log.tail());
  }

  private CriuException failure(int exitCode) {
    if (ranOutOfSpace(log, FreeSpace.usableBytesOrPlenty(options.workDir()))) {
      return new CriuException("WorkDirFull", "criu dump of PID " + options.pid() + " failed: the work folder "
          + options.workDir() + " is full (" + Criu.NO_SPACE + "); free space there or give the agent a larger"
          + " --work-dir. The process was released and keeps running", log.tail());
    }
    return new CriuException("CriuDumpFailed",
        "criu dump of PID " + options.pid() + " failed: " + log.firstError().orElse("exit code " + exitCode),
        log.tail());
  }

  /**
   * Whether a failed dump ran out of room. CRIU's log lives in the folder its images fill: once that
   * is full, the log line that says so may itself not have been written.
   */
  static boolean ranOutOfSpace(CriuLog log, long usableBytes) {
    return log.contains(Criu.NO_SPACE) || usableBytes < NEARLY_FULL_BYTES;
  }
}
