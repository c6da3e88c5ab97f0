package dev.stasis.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The command line of a benchmark (bench/run.sh passes it on): {@code --name value} options, each
 * with its default, and {@code --no-write}; an option the benchmark does not know is refused rather
 * than ignored, so that a mistyped one never silently runs the defaults.
 */
final class BenchOptions {
  private final Map<String, String> values;
  private final Set<String> flagsGiven;
  private final boolean write;

  private BenchOptions(Map<String, String> values, Set<String> flagsGiven, boolean write) {
    this.values = values;
    this.flagsGiven = flagsGiven;
    this.write = write;
  }

  /** {@code args} over {@code defaults} (option name → its default value, which also says which options there are). */
  static BenchOptions parse(String[] args, Map<String, String> defaults) {
    return parse(args, defaults, Set.of());
  }

  /** As {@link #parse(String[], Map)}, with options that take no value ({@code flags}, off unless given). */
  static BenchOptions parse(String[] args, Map<String, String> defaults, Set<String> flags) {
    Map<String, String> values = new LinkedHashMap<>(defaults);
    Set<String> given = new HashSet<>();
    boolean write = true;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--no-write")) {
        write = false;
      } else if (flags.contains(args[i])) {
        given.add(args[i]);
      } else if (defaults.containsKey(args[i]) && i + 1 < args.length) {
        values.put(args[i], args[++i]);
      } else {
        List<String> known = new ArrayList<>(defaults.keySet());
        known.addAll(flags);
        known.add("--no-write");
        throw new IllegalArgumentException("unknown option " + args[i] + " (known: " + String.join(", ", known)
            + "; see bench/run.sh)");
      }
    }
    return new BenchOptions(values, Set.copyOf(given), write);
  }

  /** Whether the flag {@code name} was given. */
  boolean flag(String name) {
    return flagsGiven.contains(name);
  }

  int integer(String name) {
    return Integer.parseInt(values.get(name));
  }

  /** A comma-separated list of sizes in MiB; {@code none} for none. */
  List<Integer> sizes(String name) {
    String value = values.get(name);
    return value.equals("none") ? List.of() : Arrays.stream(value.split(",")).map(Integer::parseInt).toList();
  }

  /** False with --no-write: the results are printed, not written into the repository. */
  boolean write() {
    return write;
  }
}
