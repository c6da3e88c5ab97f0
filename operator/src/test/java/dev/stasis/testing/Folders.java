package dev.stasis.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** What tests see in a folder, and its removal. */
public final class Folders {
  private Folders() {}

  /** The regular files under {@code directory}, as paths relative to it, sorted. */
  public static List<String> filesIn(Path directory) throws IOException {
    try (Stream<Path> paths = Files.walk(directory)) {
      return paths.filter(Files::isRegularFile).map(p -> directory.relativize(p).toString()).sorted().toList();
    }
  }

  /** Deletes {@code dir} and everything in it; nothing when it is null or not there. */
  public static void deleteRecursively(Path dir) throws IOException {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
