package dev.stasis.agent.profile;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A container runtime's release as the kubelet reports it (2.3.4, v2.3.4, 2.1.9+unknown, 1.34.14-rc.1). */
public record RuntimeVersion(int major, int minor, int patch) implements Comparable<RuntimeVersion> {
  private static final Pattern LEADING = Pattern.compile("^v?(\\d+)\\.(\\d+)(?:\\.(\\d+))?");

  /** Null when the text names no version. */
  public static RuntimeVersion parse(String text) {
    Matcher m = text == null ? null : LEADING.matcher(text.trim());
    if (m == null || !m.find()) {
      return null;
    }
    return new RuntimeVersion(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
        m.group(3) == null ? 0 : Integer.parseInt(m.group(3)));
  }

  public static RuntimeVersion of(int major, int minor, int patch) {
    return new RuntimeVersion(major, minor, patch);
  }

  public boolean isBefore(RuntimeVersion other) {
    return compareTo(other) < 0;
  }

  /** In [from, to). */
  boolean isIn(RuntimeVersion from, RuntimeVersion to) {
    return !isBefore(from) && isBefore(to);
  }

  @Override
  public int compareTo(RuntimeVersion o) {
    int c = Integer.compare(major, o.major);
    if (c == 0) c = Integer.compare(minor, o.minor);
    return c != 0 ? c : Integer.compare(patch, o.patch);
  }

  @Override
  public String toString() {
    return major + "." + minor + "." + patch;
  }
}
