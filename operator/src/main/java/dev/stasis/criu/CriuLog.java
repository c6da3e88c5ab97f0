package dev.stasis.criu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** Reads CRIU's log: its tail for people, and the first error line for a short message. */
public final class CriuLog {
  private static final int TAIL_LINES = 20;
  private static final int TAIL_MAX_CHARS = 4000;

  private final Path file;

  public CriuLog(Path file) {
    this.file = file;
  }

  public Path file() {
    return file;
  }

  public List<String> lines() {
    try {
      return Files.exists(file) ? Files.readAllLines(file, StandardCharsets.UTF_8) : List.of();
    } catch (IOException e) {
      return List.of();
    }
  }

  public String tail() {
    List<String> lines = lines();
    String tail = String.join("\n", lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()));
    return tail.length() > TAIL_MAX_CHARS ? tail.substring(tail.length() - TAIL_MAX_CHARS) : tail;
  }

  /**
   * CRIU marks errors with "Error (file:line):"; the first one is usually the cause, except for
   * lines CRIU prints on every run (it cannot raise RLIMIT_NOFILE inside a container, harmlessly)
   * and the closing "Dumping FAILED." / "Restoring FAILED.".
   */
  public Optional<String> firstError() {
    return lines().stream()
        .filter(l -> l.contains("Error (") || l.contains("Error:"))
        .filter(l -> !l.contains("RLIMIT_NOFILE") && !l.strip().endsWith("FAILED."))
        .map(CriuLog::withoutPrefix)
        .findFirst();
  }

  public boolean contains(String text) {
    return lines().stream().anyMatch(l -> l.contains(text));
  }

  // "(00.012345) Error (criu/cr-restore.c:1234): Can't fork..." -> "Can't fork..."
  private static String withoutPrefix(String line) {
    int i = line.indexOf("): ", line.indexOf("Error"));
    return (i >= 0 ? line.substring(i + 3) : line).trim();
  }
}
