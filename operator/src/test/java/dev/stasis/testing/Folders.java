package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What tests see in a folder. */
public final class Folders {
  private Folders() {}

  /** The regular files under {@code directory}, as paths relative to it, sorted. */
  public static List<String> filesIn(Path directory) throws IOException {
    try (Stream<Path> paths = Files.walk(directory)) {
      return paths.filter(Files::isRegularFile).map(p -> directory.relativize(p).toString()).sorted().toList();
    }
  }
}
