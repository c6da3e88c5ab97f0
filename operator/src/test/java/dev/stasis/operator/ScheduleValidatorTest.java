package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** What the operator refuses in a CheckpointSchedule, and what it makes of a valid one, without a server. */
class ScheduleValidatorTest {

  @Test
  void aValidTemplateScheduleInTheFormsItRunsWith() throws Refusal {
    var valid = ScheduleValidator.validate(template("nightly", "0 2 * * *", s -> {
      s.timeZone = "Europe/Berlin";
      s.startingDeadlineSeconds = 600L;
      s.concurrencyPolicy = ConcurrencyPolicy.Replace;
      s.triggers = new CheckpointScheduleSpec.Triggers();
      s.triggers.onNodeDrain = true;
    }));
    // 02:00 in Berlin is 01:00 UTC in winter
    assertThat(valid.runs().nextAfter(Instant.parse("2026-01-10T00:00:00Z"))).contains(Instant.parse("2026-01-10T01:00:00Z"));
    assertThat(valid.startingDeadline()).isEqualTo(Duration.ofMinutes(10));
    assertThat(valid.concurrency()).isEqualTo(ConcurrencyPolicy.Replace);
    assertThat(valid.onNodeDrain()).isTrue();
    assertThat(valid.selector()).isNull();
    assertThat(valid.containers()).isEmpty();
  }

  @Test
  void aValidSelectorSchedule() throws Refusal {
    var valid = ScheduleValidator.validate(selecting("web", "@every 10m", s -> s.containers = List.of("app")));
    assertThat(valid.selector().getMatchLabels()).containsEntry("app", "web");
    assertThat(valid.containers()).containsExactly("app");
    assertThat(valid.template()).isNull();
    assertThat(valid.onNodeDrain()).isFalse();
    assertThat(valid.concurrency()).isEqualTo(ConcurrencyPolicy.Forbid);
  }

  @Test
  void theNameMustFitALabelValue() {
    assertRefused(template("s".repeat(64), "@daily", s -> {}), "NameTooLong", "at most 63 characters; this one has 64");
  }

  @Test
  void exactlyOneOfTemplateOrSelector() {
    CheckpointSchedule both = template("s", "@daily", s -> s.selector = new LabelSelector(null, Map.of("app", "web")));
    assertRefused(both, "InvalidTarget", "set exactly one of spec.checkpointTemplate");
    assertRefused(template("s", "@daily", s -> s.checkpointTemplate = null), "InvalidTarget",
        "set exactly one of spec.checkpointTemplate");
    assertRefused(template("s", "@daily", s -> s.checkpointTemplate.target = new CheckpointTarget()), "InvalidTarget",
        "set exactly one of spec.checkpointTemplate.target.process");
  }

  @Test
  void fieldsOfSelectorSchedulesAreRefusedWithATemplate() {
    assertRefused(template("s", "@daily", s -> s.ttl = "1h"), "InvalidTarget",
        "only go with spec.selector: set checkpointTemplate.target.pod.containers and the others");
  }

  @Test
  void aSelectorAsTheApiServerWouldTakeIt() {
    assertRefused(selecting("s", "@daily", s -> s.selector.setMatchExpressions(
        List.of(new LabelSelectorRequirement("app", "Equals", List.of("web"))))), "InvalidSelector",
        "operator 'Equals' of key 'app' is none of In, NotIn, Exists, DoesNotExist");
    assertRefused(selecting("s", "@daily", s -> s.selector.setMatchExpressions(
        List.of(new LabelSelectorRequirement("app", "In", List.of())))), "InvalidSelector",
        "operator In of key 'app' needs values");
    assertRefused(selecting("s", "@daily", s -> s.selector.setMatchExpressions(
        List.of(new LabelSelectorRequirement("app", "Exists", List.of("web"))))), "InvalidSelector",
        "operator Exists of key 'app' takes no values");
    assertRefused(selecting("s", "@daily", s -> s.containers = List.of("app", " ")), "InvalidTarget",
        "spec.containers: a container name is empty");
  }

  @Test
  void timesAndDurations() {
    assertRefused(template("s", "61 * * * *", s -> {}), "InvalidSchedule", "spec.schedule: ");
    assertRefused(template("s", "@daily", s -> s.timeZone = "Mars/Olympus_Mons"), "UnknownTimeZone",
        "spec.timeZone 'Mars/Olympus_Mons' is not an IANA time zone");
    assertRefused(template("s", "@daily", s -> s.startingDeadlineSeconds = -1L), "InvalidStartingDeadline",
        "must be 0 or more, got -1");
    assertRefused(template("s", "@daily", s -> {
      s.retention = new CheckpointScheduleSpec.Retention();
      s.retention.keepLast = 0;
    }), "InvalidRetention", "spec.retention.keepLast must be 1 or more");
    assertRefused(template("s", "@daily", s -> s.checkpointTemplate.ttl = "soon"), "InvalidTtl",
        "spec.checkpointTemplate.ttl: ");
    assertRefused(selecting("s", "@daily", s -> s.ttl = "one day"), "InvalidTtl", "spec.ttl: 'one day'");
  }

  private static void assertRefused(CheckpointSchedule schedule, String reason, String text) {
    assertThatThrownBy(() -> ScheduleValidator.validate(schedule)).isInstanceOfSatisfying(Refusal.class, r -> {
      assertThat(r.reason()).isEqualTo(reason);
      assertThat(r.getMessage()).contains(text);
    });
  }

  private static CheckpointSchedule template(String name, String cron, Consumer<CheckpointScheduleSpec> change) {
    CheckpointScheduleSpec spec = new CheckpointScheduleSpec();
    spec.schedule = cron;
    spec.checkpointTemplate = new CheckpointTemplate();
    spec.checkpointTemplate.target = CheckpointTarget.process("node-a", 4242);
    change.accept(spec);
    return schedule(name, spec);
  }

  private static CheckpointSchedule selecting(String name, String cron, Consumer<CheckpointScheduleSpec> change) {
    CheckpointScheduleSpec spec = new CheckpointScheduleSpec();
    spec.schedule = cron;
    spec.selector = new LabelSelector(null, Map.of("app", "web"));
    change.accept(spec);
    return schedule(name, spec);
  }

  private static CheckpointSchedule schedule(String name, CheckpointScheduleSpec spec) {
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("jobs").build());
    schedule.setSpec(spec);
    return schedule;
  }
}
