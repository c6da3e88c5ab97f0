package dev.stasis.operator.schedule;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * A 5-field cron expression (minute hour day-of-month month day-of-week) or a nickname, read in a
 * time zone, with the rules of Kubernetes CronJob (robfig/cron): lists, ranges, steps, month and
 * weekday names, {@code ?} for {@code *}, 7 for Sunday; when both day fields are restricted a day
 * matching either runs. Across daylight-saving changes a local time that does not exist does not
 * run, and one that happens twice runs twice.
 */
public final class CronSchedule implements RunSchedule {
  private static final Map<String, String> NICKNAMES = Map.of(
      "@yearly", "0 0 1 1 *",
      "@annually", "0 0 1 1 *",
      "@monthly", "0 0 1 * *",
      "@weekly", "0 0 * * 0",
      "@daily", "0 0 * * *",
      "@midnight", "0 0 * * *",
      "@hourly", "0 * * * *");
  private static final Field MINUTE = new Field("minute", 0, 59, List.of());
  private static final Field HOUR = new Field("hour", 0, 23, List.of());
  private static final Field DAY_OF_MONTH = new Field("day of month", 1, 31, List.of());
  private static final Field MONTH = new Field("month", 1, 12,
      List.of("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"));
  private static final Field DAY_OF_WEEK = new Field("day of week", 0, 7,
      List.of("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"));
  /** Set in a day field's bits when it was written as * or ?: then the other day field alone decides. */
  private static final long STAR = 1L << 63;
  /** Long enough to find Feb 29 across a skipped leap year (2100). */
  private static final int HORIZON_YEARS = 9;
  private static final Instant REFERENCE = Instant.parse("2000-01-01T00:00:00Z");

  private final ZoneId zone;
  private final long minutes;
  private final long hours;
  private final long daysOfMonth;
  private final long months;
  private final long daysOfWeek;

  private CronSchedule(ZoneId zone, long[] fields) {
    this.zone = zone;
    this.minutes = fields[0];
    this.hours = fields[1];
    this.daysOfMonth = fields[2];
    this.months = fields[3];
    this.daysOfWeek = fields[4];
  }

  static CronSchedule parse(String expression, ZoneId zone) {
    String fields = expression.startsWith("@")
        ? NICKNAMES.get(expression.toLowerCase(Locale.ROOT))
        : expression;
    if (fields == null) {
      throw new IllegalArgumentException("unknown nickname '" + expression
          + "': use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>");
    }
    String[] parts = fields.trim().split("\\s+");
    if (parts.length != 5) {
      throw new IllegalArgumentException("'" + expression + "' has " + parts.length
          + " fields; a cron expression has 5: minute hour day-of-month month day-of-week");
    }
    Field[] kinds = {MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK};
    long[] bits = new long[5];
    for (int i = 0; i < 5; i++) {
      bits[i] = kinds[i].parse(parts[i]);
    }
    if ((bits[4] & 1L << 7) != 0) {
      bits[4] = bits[4] & ~(1L << 7) | 1L; // 7 is Sunday too
    }
    CronSchedule schedule = new CronSchedule(zone, bits);
    if (schedule.nextAfter(REFERENCE).isEmpty()) {
      throw new IllegalArgumentException("'" + expression + "' never fires: no month has that day");
    }
    return schedule;
  }

  @Override
  public Optional<Instant> nextAfter(Instant time) {
    ZonedDateTime t = time.atZone(zone).truncatedTo(ChronoUnit.MINUTES).plusMinutes(1);
    ZonedDateTime end = t.plusYears(HORIZON_YEARS);
    while (t.isBefore(end)) {
      if (!has(months, t.getMonthValue())) {
        t = t.toLocalDate().withDayOfMonth(1).plusMonths(1).atStartOfDay(zone);
      } else if (!dayMatches(t)) {
        t = t.toLocalDate().plusDays(1).atStartOfDay(zone);
      } else if (!has(hours, t.getHour())) {
        t = t.truncatedTo(ChronoUnit.HOURS).plusHours(1);
      } else if (!has(minutes, t.getMinute())) {
        t = t.plusMinutes(1);
      } else {
        return Optional.of(t.toInstant());
      }
    }
    return Optional.empty();
  }

  /**
   * Looks back from {@code now} over a window that doubles until it holds a run, so that a long
   * outage costs a few steps rather than one per missed run.
   */
  @Override
  public Optional<Instant> latestDue(Instant after, Instant now) {
    Duration lookback = Duration.ofHours(1);
    while (now.isAfter(after)) {
      Instant from = now.minus(lookback).isAfter(after) ? now.minus(lookback) : after;
      Optional<Instant> run = nextAfter(from).filter(r -> !r.isAfter(now));
      if (run.isPresent()) {
        Instant latest = run.get();
        for (var next = nextAfter(latest); next.isPresent() && !next.get().isAfter(now); next = nextAfter(latest)) {
          latest = next.get();
        }
        return Optional.of(latest);
      }
      if (from.equals(after)) {
        break;
      }
      lookback = lookback.multipliedBy(2);
    }
    return Optional.empty();
  }

  private boolean dayMatches(ZonedDateTime t) {
    boolean dayOfMonth = has(daysOfMonth, t.getDayOfMonth());
    boolean dayOfWeek = has(daysOfWeek, t.getDayOfWeek().getValue() % 7);
    if ((daysOfMonth & STAR) != 0 || (daysOfWeek & STAR) != 0) {
      return dayOfMonth && dayOfWeek;
    }
    return dayOfMonth || dayOfWeek;
  }

  private static boolean has(long bits, int value) {
    return (bits & 1L << value) != 0;
  }

  private record Field(String name, int min, int max, List<String> names) {

    /** The field's values as bits, plus {@link #STAR} when it was written as * or ?. */
    long parse(String text) {
      long bits = 0;
      for (String part : text.split(",", -1)) {
        bits |= parseRange(part);
      }
      return bits;
    }

    private long parseRange(String part) {
      String[] rangeAndStep = part.split("/", -1);
      if (part.isEmpty() || rangeAndStep.length > 2) {
        throw invalid(part);
      }
      String range = rangeAndStep[0];
      int low;
      int high;
      long extra = 0;
      if (range.equals("*") || range.equals("?")) {
        low = min;
        high = max == 7 ? 6 : max;
        extra = STAR;
      } else {
        String[] bounds = range.split("-", -1);
        if (bounds.length > 2) {
          throw invalid(part);
        }
        low = value(bounds[0], part);
        // "N/step" means N up to the maximum, stepping
        high = bounds.length == 2 ? value(bounds[1], part) : rangeAndStep.length == 2 ? max : low;
      }
      int step = 1;
      if (rangeAndStep.length == 2) {
        step = number(rangeAndStep[1], part);
        if (step < 1) {
          throw new IllegalArgumentException("step " + step + " in the " + name + " field '" + part + "' must be 1 or more");
        }
        if (step > 1) {
          extra = 0;
        }
      }
      if (low < min || high > max || low > high) {
        throw new IllegalArgumentException("the " + name + " field '" + part + "' is out of range " + min + "-" + max);
      }
      long bits = extra;
      for (int v = low; v <= high; v += step) {
        bits |= 1L << v;
      }
      return bits;
    }

    private int value(String text, String part) {
      int index = names.indexOf(text.toUpperCase(Locale.ROOT));
      if (index >= 0) {
        return index + min;
      }
      return number(text, part);
    }

    private int number(String text, String part) {
      try {
        return Integer.parseInt(text);
      } catch (NumberFormatException e) {
        throw invalid(part);
      }
    }

    private IllegalArgumentException invalid(String part) {
      return new IllegalArgumentException("the " + name + " field '" + part + "' is not a number, name, range (a-b),"
          + " list (a,b) or step (*/n)");
    }
  }
}
