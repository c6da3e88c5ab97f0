package dev.stasis.agent.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lowers the CPU priority (raises the nice value) of the calling thread. On Linux the nice value
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
      // "/proc/thread-self" links to "<pid>/task/<tid>" of the thread that reads it.
      String tid = Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString();
      Process renice = new ProcessBuilder("renice", "-n", Integer.toString(nice), "-p", tid)
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      if (!renice.waitFor(5, TimeUnit.SECONDS) || renice.exitValue() != 0) {
        renice.destroyForcibly();
        log.debug("renice -n {} -p {} failed; the thread keeps its priority", nice, tid);
      }
    } catch (IOException | UnsupportedOperationException e) {
      log.debug("cannot lower the priority of this thread: {}", e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
