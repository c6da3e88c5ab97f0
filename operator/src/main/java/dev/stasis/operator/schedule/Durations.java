package dev.stasis.operator.schedule;

import dev.stasis.api.CheckpointSpec;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Durations as people write them in specs: whole numbers of days, hours, minutes and seconds,
 * Go-style ({@code 90s}, {@code 1h30m}, {@code 7d}). The CRDs check the same grammar
 * ({@link CheckpointSpec#DURATION_PATTERN}) at admission.
 */
public final class Durations {
  /** The grammar as a JSON-schema pattern, for the CRDs. */
  private static final Pattern WHOLE = Pattern.compile(CheckpointSpec.DURATION_PATTERN);
  private static final Pattern PART = Pattern.compile("([0-9]+)(d|h|m|s)");

  private Durations() {}

  /** @throws IllegalArgumentException saying what is wrong with {@code text} */
  public static Duration parse(String text) {
    if (text == null || !WHOLE.matcher(text).matches()) {
      throw new IllegalArgumentException("'" + text + "' is not a duration: write whole numbers with units d, h, m"
          + " or s, e.g. 90s, 1h30m or 7d");
    }
    Duration total = Duration.ZERO;
    Matcher part = PART.matcher(text);
    try {
      while (part.find()) {
        long amount = Long.parseLong(part.group(1));
        total = total.plus(switch (part.group(2)) {
          case "d" -> Duration.ofDays(amount);
          case "h" -> Duration.ofHours(amount);
          case "m" -> Duration.ofMinutes(amount);
          default -> Duration.ofSeconds(amount);
        });
      }
    } catch (ArithmeticException | NumberFormatException e) {
      throw new IllegalArgumentException("'" + text + "' is too long a duration");
    }
    return total;
  }
}
