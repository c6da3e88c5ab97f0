package dev.stasis.criu;

import java.util.ArrayList;
import java.util.List;

/**
 * The feature names {@code criu --help} lists under {@code --feature FEAT}. CRIU has no command
 * that prints them alone ({@code criu check --feature list} is not one), and the list grows with
 * every release, so it is read from the help of the CRIU at hand.
 */
final class FeatureList {
  private static final String OPTION = "--feature FEAT";
  private static final String INTRO = "one of:";

  private FeatureList() {}

  static List<String> parse(String help) {
    List<String> names = new ArrayList<>();
    String[] lines = help.split("\n");
    int start = -1;
    for (int i = 0; i < lines.length; i++) {
      if (lines[i].contains(OPTION) && lines[i].contains(INTRO)) {
        start = i;
        break;
      }
    }
    if (start < 0) {
      return names;
    }
    String first = lines[start];
    addNames(first.substring(first.indexOf(INTRO) + INTRO.length()), names);
    for (int i = start + 1; i < lines.length; i++) {
      String line = lines[i];
      // The list is a wrapped, deeply indented paragraph; the next option or a blank line ends it.
      if (line.isBlank() || line.strip().startsWith("-") || !line.startsWith("    ")) {
        break;
      }
      addNames(line, names);
    }
    return names;
  }

  private static void addNames(String text, List<String> into) {
    for (String name : text.split(",")) {
      if (!name.isBlank()) {
        into.add(name.strip());
      }
    }
  }
}
