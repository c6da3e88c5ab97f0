package dev.stasis.bench;

import java.util.Optional;

/**
 * A part of a page (BENCHMARKS.md) that one benchmark writes and the others carry along: it sits
 * between its own begin and end comments, so a rerun replaces exactly it and nothing else.
 */
record GeneratedSection(String writer) {
  String begin() {
    return "<!-- written by " + writer + "; a rerun replaces what is between these comments -->\n";
  }

  String end() {
    return "<!-- end of what " + writer + " writes -->\n";
  }

  /** The section as it stands on the page, comments included; empty when the page has none. */
  Optional<String> in(String page) {
    int from = page.indexOf(begin());
    int to = page.indexOf(end(), Math.max(from, 0));
    return from < 0 || to < 0 ? Optional.empty() : Optional.of(page.substring(from, to + end().length()));
  }

  /**
   * The page with {@code body} as this section: in place of the section it has, or else just
   * before {@code beforeHeading} if the page has that line, or else at its end.
   */
  String put(String page, String body, String beforeHeading) {
    String section = begin() + body + (body.endsWith("\n") ? "" : "\n") + end();
    Optional<String> current = in(page);
    if (current.isPresent()) {
      return page.replace(current.get(), section);
    }
    int at = page.indexOf("\n" + beforeHeading + "\n");
    if (at >= 0) {
      return page.substring(0, at + 1) + section + "\n" + page.substring(at + 1);
    }
    return page + (page.endsWith("\n") ? "\n" : "\n\n") + section;
  }
}
