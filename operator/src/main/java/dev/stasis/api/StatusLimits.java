package dev.stasis.api;

/**
 * How much a status or an Event holds, whatever the size of the cluster: etcd keeps an object to
 * 1.5 MiB, and a status listing every node of a large cluster, or every pod a selector found, would
 * outgrow it. Lists keep their first entries and say how many there were, with counts per reason.
 */
public final class StatusLimits {
  /** Entries of a list in a status (rejected nodes, skipped pods). */
  public static final int MAX_LISTED = 50;
  /** Reasons counted in a status, most frequent first. */
  public static final int MAX_REASONS = 20;
  /** Characters of an Event's message, and of a message in a list entry. */
  public static final int MAX_MESSAGE_CHARS = 1024;

  private StatusLimits() {}

  /** {@code text} cut to {@code max} characters, saying so at its end. */
  public static String shorten(String text, int max) {
    if (text == null || text.length() <= max) {
      return text;
    }
    String more = "… (" + (text.length() - max) + " more characters)";
    return text.substring(0, Math.max(0, max - more.length())) + more;
  }
}
