package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * CRIU's post-dump action script, as Stasis uses it to hold a dumped tree frozen: CRIU runs it once
 * every image is written, with the tree still frozen (and, with --tcp-established, its connections
 * still under the network lock); its exit status decides what CRIU does next. The script tells the
 * agent through a FIFO in the work folder that the tree is frozen, and waits for the agent's
 * {@link Decision} on a second FIFO: {@code proceed} (exit 0: CRIU resumes a tree left running, or
 * ends the tree itself, under its lock, when the dump was to end it) or {@code resume} (exit 1: CRIU
 * resumes the tree and the dump counts as failed).
 *
 * <p>The agent holds both FIFOs open from before CRIU starts, so the script never blocks on them
 * while the agent lives. If the agent dies, the script reads the end of the pipe and waits for the
 * decision in a file instead, which the next agent on the node writes ({@link #answerAbandoned}):
 * the tree stays frozen meanwhile, never resumed or ended by nobody's decision.
 *
 * <p>Only the post-dump action waits; CRIU's other actions (pre-dump, network-lock, ...) pass at once.
 */
public final class PostDumpHook implements AutoCloseable {
  static final String SCRIPT = "post-dump-hook.sh";
  private static final String FROZEN_FIFO = "hook-frozen.fifo";
  private static final String DECISION_FIFO = "hook-decision.fifo";
  /** Created by the script when it starts waiting: the tree is frozen and every image written. */
  private static final String FROZEN_MARK = "hook-frozen";
  /** The decision of an agent that found the work of one that died. */
  private static final String DECISION_FILE = "hook-decision";

  /** What CRIU does once its post-dump action returns. */
  public enum Decision {
    /** Exit 0: CRIU resumes a tree it was to leave running, or ends a tree it was to end. */
    PROCEED("proceed"),
    /** Exit 1: CRIU resumes the tree, whatever it was to do, and its dump fails. */
    RESUME("resume");

    private final String word;

    Decision(String word) {
      this.word = word;
    }
  }

  /** What the script writes once the tree is frozen; anything else on that FIFO is the agent waking itself. */
  private static final byte FROZEN = 'f';
  private static final byte WAKE = 'w';

  private final FileChannel frozen;
  /**
   * The same FIFO, to wake the waiting thread: a FileChannel serializes its reads and writes, so
   * writing through the channel a thread is blocked reading on would wait for that read.
   */
  private final FileChannel wake;
  private final FileChannel decision;
  private volatile boolean decided;
  private boolean isFrozen;

  private PostDumpHook(FileChannel frozen, FileChannel wake, FileChannel decision) {
    this.frozen = frozen;
    this.wake = wake;
    this.decision = decision;
  }

  /** Where the script for a dump working in {@code workDir} is. */
  static Path script(Path workDir) {
    return workDir.resolve(SCRIPT);
  }

  /**
   * Writes the script and its FIFOs into {@code workDir} and opens both FIFOs (read and write, so
   * that neither side's open ever blocks on the other). Before CRIU starts.
   */
  static PostDumpHook prepare(Path workDir) throws IOException {
    String dir = workDir.toAbsolutePath().toString();
    if (dir.contains("'")) {
      throw new IOException("the work folder " + dir + " has a quote in its name, which the post-dump hook cannot quote");
    }
    Files.createDirectories(workDir);
    for (String fifo : List.of(FROZEN_FIFO, DECISION_FIFO)) {
      Files.deleteIfExists(workDir.resolve(fifo));
      mkfifo(workDir.resolve(fifo));
    }
    Path script = script(workDir);
    Files.writeString(script, """
        #!/bin/sh
        # Written by the Stasis agent for one criu dump (dev.stasis.criu.PostDumpHook): says the tree is
        # frozen and every image written, then holds CRIU until the agent decides.
        [ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0
        d='%s'
        : >"$d/%s"
        echo frozen >"$d/%s"
        read decision <"$d/%s"
        # EOF: the agent died. The next agent on this node decides, in a file.
        while [ -z "$decision" ]; do
          sleep 1
          [ -s "$d/%s" ] && read decision <"$d/%s"
        done
        [ "$decision" = %s ]
        """.formatted(dir, FROZEN_MARK, FROZEN_FIFO, DECISION_FIFO, DECISION_FILE, DECISION_FILE,
        Decision.PROCEED.word));
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
    FileChannel frozen = open(workDir.resolve(FROZEN_FIFO));
    // A reader holds the FIFO open already, so opening it for writing does not wait.
    FileChannel wake = FileChannel.open(workDir.resolve(FROZEN_FIFO), StandardOpenOption.WRITE);
    return new PostDumpHook(frozen, wake, open(workDir.resolve(DECISION_FIFO)));
  }

  /**
   * Waits, in the calling thread, until the script says the tree is frozen (true), or until CRIU
   * has exited or {@code timeout} passed (false). The thread reads the FIFO itself: no other
   * thread has to be scheduled before it can act on the frozen tree.
   */
  boolean awaitFrozen(Process criu, Duration timeout) throws IOException {
    if (isFrozen) {
      return true;
    }
    criu.onExit().thenRun(this::wake);
    CompletableFuture<Void> timer = CompletableFuture.runAsync(this::wake,
        CompletableFuture.delayedExecutor(Math.max(0, timeout.toNanos()), TimeUnit.NANOSECONDS));
    try {
      ByteBuffer one = ByteBuffer.allocate(1);
      while (frozen.read(one) == 0) {
        // a read of a FIFO blocks until a byte comes
      }
      isFrozen = one.get(0) == FROZEN;
      return isFrozen;
    } finally {
      timer.cancel(false);
    }
  }

  private void wake() {
    try {
      wake.write(ByteBuffer.wrap(new byte[] {WAKE}));
    } catch (IOException e) {
      // closed: nobody waits any more
    }
  }

  /** Tells the waiting script (now, or when it gets there) what CRIU is to do; only the first call counts. */
  synchronized void decide(Decision choice) throws IOException {
    if (decided) {
      return;
    }
    decided = true;
    decision.write(ByteBuffer.wrap((choice.word + "\n").getBytes(StandardCharsets.US_ASCII)));
  }

  boolean isDecided() {
    return decided;
  }

  /** After CRIU has exited: the FIFOs close; the script, if it ever ran, is gone. */
  @Override
  public void close() {
    closeQuietly(frozen);
    closeQuietly(wake);
    closeQuietly(decision);
  }

  /**
   * Whether the CRIU of {@code workDir} (which the caller knows still runs) waits in its post-dump
   * hook for a decision no one gave: the agent that started it died after the tree was frozen.
   */
  public static boolean waitingIn(Path workDir) {
    return Files.exists(workDir.resolve(FROZEN_MARK)) && !Files.exists(workDir.resolve(DECISION_FILE));
  }

  /** What the next agent decided for a hook whose agent died, if it did. */
  public static Optional<Decision> decidedIn(Path workDir) {
    try {
      String word = Files.readString(workDir.resolve(DECISION_FILE)).strip();
      return Arrays.stream(Decision.values()).filter(d -> d.word.equals(word)).findFirst();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /**
   * Decides for a hook whose agent died: in the decision file the script falls back to, and on its
   * FIFO, in case the script still waits to open it. The returned handle keeps the FIFOs open; close
   * it once CRIU has exited, not before (a script that has not opened a FIFO yet would block on it).
   */
  public static AutoCloseable answerAbandoned(Path workDir, Decision choice) throws IOException {
    Path temporary = workDir.resolve(DECISION_FILE + ".tmp");
    Files.writeString(temporary, choice.word + "\n");
    Files.move(temporary, workDir.resolve(DECISION_FILE), StandardCopyOption.ATOMIC_MOVE);
    FileChannel frozen = open(workDir.resolve(FROZEN_FIFO));
    FileChannel decision = open(workDir.resolve(DECISION_FIFO));
    decision.write(ByteBuffer.wrap((choice.word + "\n").getBytes(StandardCharsets.US_ASCII)));
    return () -> {
      closeQuietly(frozen);
      closeQuietly(decision);
    };
  }

  /** Read and write: opening a FIFO so never waits for the other end. */
  private static FileChannel open(Path fifo) throws IOException {
    return FileChannel.open(fifo, StandardOpenOption.READ, StandardOpenOption.WRITE);
  }

  private static void mkfifo(Path path) throws IOException {
    Process mkfifo = new ProcessBuilder("mkfifo", "-m", "600", path.toString()).redirectErrorStream(true).start();
    try {
      String output = new String(mkfifo.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (!mkfifo.waitFor(10, TimeUnit.SECONDS) || mkfifo.exitValue() != 0) {
        throw new IOException("mkfifo " + path + " failed: " + output);
      }
    } catch (InterruptedException e) {
      mkfifo.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while creating " + path);
    }
  }

  private static void closeQuietly(FileChannel channel) {
    try {
      channel.close();
    } catch (IOException e) {
      // nothing left to do with it
    }
  }
}
