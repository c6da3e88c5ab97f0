package dev.stasis.cli;

import dev.stasis.agent.RuntimeSettings;
import dev.stasis.operator.schedule.Durations;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.OptionalLong;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * How flag values are read and checked. picocli puts "Invalid value for option '--flag':" before
 * each message, so a message says only what is wrong with the value and what would be right.
 */
final class Converters {
  private Converters() {}

  /** A TCP port to listen on; 0 picks a free one. */
  static final class Port implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      return (int) within(value, 0, 65535).orElseThrow(() -> new TypeConversionException("'" + value
          + "' is not a port: give a number from 0 to 65535 (0: any free port)"));
    }
  }

  /** A whole number of at least 1. */
  static final class Positive implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      return (int) within(value, 1, Integer.MAX_VALUE).orElseThrow(() -> new TypeConversionException("'" + value
          + "' is not a whole number of at least 1"));
    }
  }

  /** A whole number of at least 0. */
  static final class NonNegative implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      return (int) within(value, 0, Integer.MAX_VALUE).orElseThrow(() -> new TypeConversionException("'" + value
          + "' is not a whole number of at least 0"));
    }
  }

  /** A number of bytes, written out (1073741824): a whole number of at least 0. */
  static final class ByteCount implements ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      return within(value, 0, Long.MAX_VALUE).orElseThrow(() -> new TypeConversionException("'" + value
          + "' is not a number of bytes: give a whole number of at least 0, such as 1073741824 for 1 GiB"));
    }
  }

  /** How many agents {@code stasis local --nodes} runs: nodes NAME, NAME-b, ... up to NAME-z. */
  static final class LocalNodes implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      return (int) within(value, 1, LocalCommand.MAX_NODES).orElseThrow(() -> new TypeConversionException("'" + value
          + "' is not a number of agents from 1 to " + LocalCommand.MAX_NODES));
    }
  }

  /** {@code value} as a whole number from {@code min} to {@code max}; empty when it is not one. */
  private static OptionalLong within(String value, long min, long max) {
    try {
      long n = Long.parseLong(value.trim());
      return n >= min && n <= max ? OptionalLong.of(n) : OptionalLong.empty();
    } catch (NumberFormatException e) {
      return OptionalLong.empty();
    }
  }

  /** A duration as the specs write them (10s, 1m30m, 7d), longer than zero. */
  static final class PositiveDuration implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      Duration d;
      try {
        d = Durations.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
      if (d.isZero()) {
        throw new TypeConversionException("'" + value + "' is no time at all: give a duration such as 10s or 1m");
      }
      return d;
    }
  }

  /** A file that exists and can be read now: a misspelt path fails at start, not at first use. */
  static final class ReadableFile implements ITypeConverter<Path> {
    @Override
    public Path convert(String value) {
      Path path = Path.of(value);
      if (!Files.isRegularFile(path)) {
        throw new TypeConversionException("'" + value + "' is " + (Files.exists(path) ? "not a file" : "missing"));
      }
      if (!Files.isReadable(path)) {
        throw new TypeConversionException("'" + value + "' cannot be read by this process");
      }
      return path;
    }
  }

  /** A folder that exists now. */
  static final class ExistingDirectory implements ITypeConverter<Path> {
    @Override
    public Path convert(String value) {
      Path path = Path.of(value);
      if (!Files.isDirectory(path)) {
        throw new TypeConversionException("'" + value + "' is " + (Files.exists(path) ? "not a folder" : "missing"));
      }
      return path;
    }
  }

  /** A path that is a folder or can become one (it is created when needed). */
  static final class DirectoryPath implements ITypeConverter<Path> {
    @Override
    public Path convert(String value) {
      Path path = Path.of(value);
      if (value.isBlank() || (Files.exists(path) && !Files.isDirectory(path))) {
        throw new TypeConversionException("'" + value + "' is " + (value.isBlank() ? "empty" : "not a folder"));
      }
      return path;
    }
  }

  /** An http:// or https:// URL with a host. */
  static final class HttpUrl implements ITypeConverter<URI> {
    @Override
    public URI convert(String value) {
      try {
        URI uri = new URI(value);
        if (("https".equals(uri.getScheme()) || "http".equals(uri.getScheme())) && uri.getHost() != null) {
          return uri;
        }
      } catch (URISyntaxException e) {
        // said below
      }
      throw new TypeConversionException("'" + value + "' is not a URL such as https://node-1:10250");
    }
  }

  /** --runtime-restore: auto, enabled or disabled. */
  static final class RuntimeRestore implements ITypeConverter<RuntimeSettings.Restore> {
    @Override
    public RuntimeSettings.Restore convert(String value) {
      try {
        return RuntimeSettings.Restore.valueOf(value.trim().toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException("'" + value + "' is none of auto, enabled, disabled");
      }
    }
  }

  /** --format of inspect: text or json. */
  static final class ReportFormat implements ITypeConverter<String> {
    @Override
    public String convert(String value) {
      String format = value.trim().toLowerCase(Locale.ROOT);
      if (!format.equals("text") && !format.equals("json")) {
        throw new TypeConversionException("'" + value + "' is neither text nor json");
      }
      return format;
    }
  }
}
