package dev.stasis.criu;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A CRIU version such as 4.2.1, comparable so that placement can ask "at least the source's". */
public record CriuVersion(int major, int minor, int patch) implements Comparable<CriuVersion> {
  private static final Pattern VERSION = Pattern.compile("(\\d+)\\.(\\d+)(?:\\.(\\d+))?");

  /** Parses "4.2.1", "4.2" or the output of {@code criu --version} ("Version: 4.2.1 ..."). */
  public static CriuVersion parse(String text) {
    Matcher m = VERSION.matcher(text == null ? "" : text);
    if (!m.find()) {
      throw new IllegalArgumentException("not a CRIU version: '" + text + "'");
    }
    return new CriuVersion(
        Integer.parseInt(m.group(1)),
        Integer.parseInt(m.group(2)),
        m.group(3) == null ? 0 : Integer.parseInt(m.group(3)));
  }

  @Override
  public int compareTo(CriuVersion o) {
    int c = Integer.compare(major, o.major);
    if (c == 0) c = Integer.compare(minor, o.minor);
    if (c == 0) c = Integer.compare(patch, o.patch);
    return c;
  }

  public boolean isAtLeast(CriuVersion other) {
    return compareTo(other) >= 0;
  }

  @Override
  public String toString() {
    return major + "." + minor + "." + patch;
  }
}
