package dev.stasis.cli;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** {@code --name value} and {@code --name=value} command-line flags. */
final class Flags {
  private final Map<String, String> values = new HashMap<>();

  Flags(List<String> args) {
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      if (!arg.startsWith("--")) {
        throw new IllegalArgumentException("unexpected argument '" + arg + "'");
      }
      int eq = arg.indexOf('=');
      if (eq > 0) {
        values.put(arg.substring(2, eq), arg.substring(eq + 1));
      } else if (i + 1 < args.size() && !args.get(i + 1).startsWith("--")) {
        values.put(arg.substring(2), args.get(++i));
      } else {
        values.put(arg.substring(2), "true");
      }
    }
  }

  String get(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  String get(String name) {
    return values.get(name);
  }
}
