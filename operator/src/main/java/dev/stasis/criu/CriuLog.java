package dev.stasis.criu;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Reads CRIU's log: its tail for people, and the first error line for a short message. A log at
 * -v4 of a large dump runs to gigabytes, so it is never read whole: the tail is read from the end,
 * searches stream the lines, and a line is cut at {@value #MAX_LINE_CHARS} characters.
 */
public final class CriuLog {
  private static final int TAIL_LINES = 20;
  private static final int TAIL_MAX_CHARS = 4000;
  static final int MAX_LINE_CHARS = 4096;

  private final Path file;

  public CriuLog(Path file) {
    this.file = file;
  }

  public Path file() {
    return file;
  }

  /** Whether CRIU wrote anything into it. */
  public boolean isEmpty() {
    try {
      return !Files.exists(file) || Files.size(file) == 0;
    } catch (IOException e) {
      return true;
    }
  }

  /** The last lines, read from the end of the file, at most {@value #TAIL_MAX_CHARS} characters. */
  public String tail() {
    byte[] end;
    boolean fromStart;
    try (RandomAccessFile log = new RandomAccessFile(file.toFile(), "r")) {
      long length = log.length();
      end = new byte[(int) Math.min(length, 4L * TAIL_MAX_CHARS)];
      fromStart = end.length == length;
      log.seek(length - end.length);
      log.readFully(end);
    } catch (IOException e) {
      return "";
    }
    List<String> lines = new ArrayList<>(List.of(new String(end, StandardCharsets.UTF_8).split("\n")));
    if (!fromStart && lines.size() > 1) {
      lines.remove(0); // the end of a line that began before what was read
    }
    String tail = String.join("\n", lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()));
    return tail.length() > TAIL_MAX_CHARS ? tail.substring(tail.length() - TAIL_MAX_CHARS) : tail;
  }

  /**
   * CRIU marks errors with "Error (file:line):"; the first one is usually the cause, except for
   * lines CRIU prints on every run (it cannot raise RLIMIT_NOFILE inside a container, harmlessly)
   * and the closing "Dumping FAILED." / "Restoring FAILED.".
   */
  public Optional<String> firstError() {
    return firstLine(l -> (l.contains("Error (") || l.contains("Error:"))
        && !l.contains("RLIMIT_NOFILE") && !l.strip().endsWith("FAILED.")).map(CriuLog::withoutPrefix);
  }

  public boolean contains(String text) {
    return firstLine(l -> l.contains(text)).isPresent();
  }

  /** The first line that matches, reading no further than it. */
  private Optional<String> firstLine(Predicate<String> matches) {
    if (!Files.exists(file)) {
      return Optional.empty();
    }
    try (BufferedReader in = new BufferedReader(new InputStreamReader(Files.newInputStream(file),
        StandardCharsets.UTF_8))) {
      StringBuilder line = new StringBuilder();
      boolean more = true;
      while (more) {
        line.setLength(0);
        more = readLine(in, line);
        if ((more || line.length() > 0) && matches.test(line.toString())) {
          return Optional.of(line.toString());
        }
      }
      return Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** Reads up to the next newline, keeping at most {@value #MAX_LINE_CHARS} characters; false at the end. */
  private static boolean readLine(BufferedReader in, StringBuilder line) throws IOException {
    int c;
    while ((c = in.read()) >= 0) {
      if (c == '\n') {
        return true;
      }
      if (line.length() < MAX_LINE_CHARS) {
        line.append((char) c);
      }
    }
    return false;
  }

  // "(00.012345) Error (criu/cr-restore.c:1234): Can't fork..." -> "Can't fork..."
  private static String withoutPrefix(String line) {
    int i = line.indexOf("): ", line.indexOf("Error"));
    return (i >= 0 ? line.substring(i + 3) : line).trim();
  }
}
