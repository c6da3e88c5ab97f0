package dev.stasis.agent.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sets the CPU priority (the nice value) of the calling thread. On Linux the nice value
 * belongs to each thread, and threads inherit it from the thread that starts them, so work begun
 * from a lowered thread (zstd's workers, upload threads) runs lowered too. Java has no call for
 * this, hence {@code renice} on the thread's own ID.
 */
final class CpuPriority {
  private static final Logger log = LoggerFactory.getLogger(CpuPriority.class);

  private CpuPriority() {}

  /** Best effort: work at the usual priority is slower to share the CPU, never wrong. */
  static void lowerCurrentThread(int nice) {
    try {
      renice(threadId(), nice);
    } catch (IOException | UnsupportedOperationException e) {
      log.debug("cannot lower the priority of this thread: {}", e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A thread's priority for a while: closing it gives the thread the nice value it had. */
  interface Held extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Gives the calling thread nice value {@code nice} (root may raise its priority) until the
   * returned handle is closed, by the same thread. Best effort, as {@link #lowerCurrentThread}.
   */
  static Held currentThreadAt(int nice) {
    String tid;
    int before;
    try {
      tid = threadId();
      // /proc/thread-self/stat: the nice value is field 19, the 17th after the command name.
      String stat = Files.readString(Path.of("/proc/thread-self/stat"));
      before = Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[16]);
      renice(tid, nice);
    } catch (IOException | RuntimeException e) {
      log.debug("cannot change the priority of this thread: {}", e.toString());
      return () -> {};
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return () -> {};
    }
    return () -> {
      try {
        renice(tid, before);
      } catch (IOException e) {
        log.debug("cannot give thread {} its nice value {} back: {}", tid, before, e.toString());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    };
  }

  /** "/proc/thread-self" links to "<pid>/task/<tid>" of the thread that reads it. */
  private static String threadId() throws IOException {
    return Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString();
  }

  private static void renice(String tid, int nice) throws IOException, InterruptedException {
    Process renice = new ProcessBuilder("renice", "-n", Integer.toString(nice), "-p", tid)
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    if (!renice.waitFor(5, TimeUnit.SECONDS) || renice.exitValue() != 0) {
      renice.destroyForcibly();
      log.debug("renice -n {} -p {} failed; the thread keeps its priority", nice, tid);
    }
  }
}
