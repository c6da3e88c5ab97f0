package dev.stasis.agent.work;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The agent's work folders hold CRIU images only while a job needs them. */
public final class WorkDirs {
  private static final Logger log = LoggerFactory.getLogger(WorkDirs.class);

  private WorkDirs() {}

  /** The bytes of the regular files under {@code dir} (CRIU's images once it is done); 0 when it cannot be read. */
  public static long bytesIn(Path dir) {
    try (var paths = Files.walk(dir)) {
      return paths.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException | UncheckedIOException e) {
      return 0;
    }
  }

  public static void delete(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException | UncheckedIOException e) {
      log.warn("could not clean work folder {}: {}", dir, e.getMessage());
    }
  }
}
