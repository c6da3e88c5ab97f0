package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The JVM options the operator's and the agent's images start java with: images/java-options, one a line. */
public final class ImageJavaOptions {
  private ImageJavaOptions() {}

  public static List<String> of(Path repoRoot) throws IOException {
    return Files.readAllLines(repoRoot.resolve("images/java-options")).stream()
        .map(String::trim).filter(line -> !line.isEmpty() && !line.startsWith("#")).toList();
  }
}
