package dev.stasis.cli;

import ch.qos.logback.classic.Level;
import picocli.CommandLine.Option;

/** {@code --log-format} and {@code --log-level}, which every long-running command takes. */
final class LoggingOptions {
  /** Levels as people write them. */
  enum LogLevel {
    error(Level.ERROR), warn(Level.WARN), info(Level.INFO), debug(Level.DEBUG), trace(Level.TRACE);

    final Level level;

    LogLevel(Level level) {
      this.level = level;
    }
  }

  @Option(names = "--log-format", paramLabel = "FORMAT", defaultValue = "text", order = 95,
      description = "${COMPLETION-CANDIDATES}: json writes one JSON object a line, with the resource's namespace,"
          + " name and uid, the node and the attempt as fields, for a cluster's log search (default: ${DEFAULT-VALUE}).")
  LogSetup.Format format;

  @Option(names = "--log-level", paramLabel = "LEVEL", defaultValue = "info", order = 96,
      description = "${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
  LogLevel level;

  void apply() {
    LogSetup.apply(format, level.level);
  }
}
