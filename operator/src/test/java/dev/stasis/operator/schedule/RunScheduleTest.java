package dev.stasis.operator.schedule;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RunScheduleTest {

  @ParameterizedTest(name = "{0} in {1} after {2} -> {3}")
  @CsvSource(delimiter = '|', textBlock = """
      # schedule               | zone             | after                     | next
      */15 * * * *             | UTC              | 2025-03-10T10:07:00Z      | 2025-03-10T10:15:00Z
      */15 * * * *             | UTC              | 2025-03-10T10:15:00Z      | 2025-03-10T10:30:00Z
      0 2 * * *                | UTC              | 2025-03-10T02:00:30Z      | 2025-03-11T02:00:00Z
      30 9 * * MON-FRI         | UTC              | 2025-03-07T10:00:00Z      | 2025-03-10T09:30:00Z
      0 0 1 JAN,jul *          | UTC              | 2025-02-01T00:00:00Z      | 2025-07-01T00:00:00Z
      5/20 8-10 * * *          | UTC              | 2025-03-10T08:26:00Z      | 2025-03-10T08:45:00Z
      0 0 * * 7                | UTC              | 2025-03-10T00:00:00Z      | 2025-03-16T00:00:00Z
      # both day fields restricted: either one matches (the 13th, or a Friday)
      0 0 13 * FRI             | UTC              | 2025-03-10T00:00:00Z      | 2025-03-13T00:00:00Z
      0 0 13 * FRI             | UTC              | 2025-03-13T00:00:00Z      | 2025-03-14T00:00:00Z
      # a star in one day field: the other alone decides
      0 0 ? * FRI              | UTC              | 2025-03-10T00:00:00Z      | 2025-03-14T00:00:00Z
      0 0 29 2 *               | UTC              | 2025-03-01T00:00:00Z      | 2028-02-29T00:00:00Z
      @hourly                  | UTC              | 2025-03-10T10:00:00Z      | 2025-03-10T11:00:00Z
      @daily                   | Europe/Berlin    | 2025-03-10T12:00:00Z      | 2025-03-10T23:00:00Z
      @weekly                  | UTC              | 2025-03-10T12:00:00Z      | 2025-03-16T00:00:00Z
      @monthly                 | UTC              | 2025-03-10T12:00:00Z      | 2025-04-01T00:00:00Z
      @yearly                  | America/New_York | 2025-03-10T12:00:00Z      | 2026-01-01T05:00:00Z
      0 9 * * *                | Asia/Kolkata     | 2025-03-10T00:00:00Z      | 2025-03-10T03:30:00Z
      # 02:30 does not exist on the day Berlin springs forward: that day has no run
      30 2 * * *               | Europe/Berlin    | 2025-03-29T12:00:00Z      | 2025-03-31T00:30:00Z
      # 02:30 happens twice on the day Berlin falls back: it runs at both
      30 2 * * *               | Europe/Berlin    | 2025-10-26T00:00:00Z      | 2025-10-26T00:30:00Z
      30 2 * * *               | Europe/Berlin    | 2025-10-26T00:30:00Z      | 2025-10-26T01:30:00Z
      @every 3s                | UTC              | 2025-03-10T10:00:00Z      | 2025-03-10T10:00:03Z
      @every 1h30m             | Europe/Berlin    | 2025-03-10T10:00:00Z      | 2025-03-10T11:30:00Z
      """)
  void nextRun(String schedule, String zone, String after, String next) {
    assertThat(RunSchedule.parse(schedule, ZoneId.of(zone)).nextAfter(Instant.parse(after)))
        .contains(Instant.parse(next));
  }

  @ParameterizedTest(name = "{0}: {1}")
  @CsvSource(delimiter = '|', textBlock = """
      ''                | empty
      * * * *           | has 4 fields
      * * * * * *       | has 6 fields
      61 * * * *        | out of range 0-59
      * 24 * * *        | out of range 0-23
      * * 0 * *         | out of range 1-31
      * * * 13 *        | out of range 1-12
      * * * * 8         | out of range 0-7
      5-1 * * * *       | out of range
      */0 * * * *       | must be 1 or more
      a * * * *         | not a number
      1,,2 * * * *      | not a number
      0 0 30 2 *        | never fires
      @fortnightly      | unknown nickname
      @every            | @every followed by a duration
      @every 0s         | at least 1s
      @every 10 minutes | not a duration
      @every10m         | @every followed by a duration
      """)
  void invalidSchedules(String schedule, String message) {
    assertThatThrownBy(() -> RunSchedule.parse(schedule, ZoneId.of("UTC")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(message);
  }

  @ParameterizedTest(name = "{0} since {1} at {2}: due {3}, next {4}")
  @CsvSource(delimiter = '|', nullValues = "-", textBlock = """
      # schedule  | last handled         | now                       | due                  | next
      @every 3s   | 2025-03-10T10:00:00Z | 2025-03-10T10:00:02.900Z  | -                    | 2025-03-10T10:00:03Z
      @every 3s   | 2025-03-10T10:00:00Z | 2025-03-10T10:00:03Z      | 2025-03-10T10:00:03Z | 2025-03-10T10:00:06Z
      # down for 10s: only the latest missed run is due, and the grid is kept
      @every 3s   | 2025-03-10T10:00:00Z | 2025-03-10T10:00:10.500Z  | 2025-03-10T10:00:09Z | 2025-03-10T10:00:12Z
      @hourly     | 2025-03-10T10:00:00Z | 2025-03-10T10:59:59Z      | -                    | 2025-03-10T11:00:00Z
      @hourly     | 2025-03-10T10:00:00Z | 2025-03-10T11:00:00Z      | 2025-03-10T11:00:00Z | 2025-03-10T12:00:00Z
      # down for three weeks
      @hourly     | 2025-03-10T10:00:00Z | 2025-03-31T17:20:00Z      | 2025-03-31T17:00:00Z | 2025-03-31T18:00:00Z
      @yearly     | 2020-01-01T00:00:00Z | 2025-03-10T10:00:00Z      | 2025-01-01T00:00:00Z | 2026-01-01T00:00:00Z
      0 0 29 2 *  | 2025-03-01T00:00:00Z | 2029-01-01T00:00:00Z      | 2028-02-29T00:00:00Z | 2032-02-29T00:00:00Z
      """)
  void dueRun(String schedule, String lastHandled, String now, String due, String next) {
    RunPlan plan = RunPlan.at(RunSchedule.parse(schedule, ZoneId.of("UTC")), Instant.parse(lastHandled),
        Instant.parse(now), null);
    assertThat(plan.due()).isEqualTo(Optional.ofNullable(due).map(Instant::parse));
    assertThat(plan.next()).contains(Instant.parse(next));
    assertThat(plan.tooLate()).isFalse();
  }

  @ParameterizedTest(name = "run due at 10:00:09, now {0}, deadline {1}s: too late = {2}")
  @CsvSource({
      "2025-03-10T10:00:09Z, 0, false",
      "2025-03-10T10:00:09.500Z, 0, true",
      "2025-03-10T10:00:11Z, 2, false",
      "2025-03-10T10:00:11.001Z, 2, true",
  })
  void startingDeadline(String now, long deadlineSeconds, boolean tooLate) {
    RunPlan plan = RunPlan.at(RunSchedule.parse("@every 3s", ZoneId.of("UTC")), Instant.parse("2025-03-10T10:00:00Z"),
        Instant.parse(now), Duration.ofSeconds(deadlineSeconds));
    assertThat(plan.due()).contains(Instant.parse("2025-03-10T10:00:09Z"));
    assertThat(plan.tooLate()).isEqualTo(tooLate);
  }

  @Test
  void durations() {
    assertThat(Durations.parse("90s")).isEqualTo(Duration.ofSeconds(90));
    assertThat(Durations.parse("1h30m")).isEqualTo(Duration.ofMinutes(90));
    assertThat(Durations.parse("7d")).isEqualTo(Duration.ofDays(7));
    assertThatThrownBy(() -> Durations.parse("-1h")).hasMessageContaining("not a duration");
    assertThatThrownBy(() -> Durations.parse("1.5h")).hasMessageContaining("not a duration");
    assertThatThrownBy(() -> Durations.parse("99999999999999999999d")).hasMessageContaining("too long");
  }
}
