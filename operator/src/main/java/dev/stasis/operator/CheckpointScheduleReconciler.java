package dev.stasis.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.CheckpointScheduleStatus.DrainCheckpoint;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Conditions;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.StatusWriter;
import dev.stasis.operator.retention.RetentionPolicy;
import dev.stasis.operator.schedule.Durations;
import dev.stasis.operator.schedule.NodeDrain;
import dev.stasis.operator.schedule.RunPlan;
import dev.stasis.operator.schedule.RunSchedule;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.ResourceID;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs CheckpointSchedules: creates a Checkpoint for each run as it falls due and one at once when
 * the target's node is drained, deletes what the retention policy no longer keeps, and counts runs
 * and outcomes in the status.
 *
 * <p>Every decision is made from the schedule's status and the schedule's Checkpoints as the API
 * server has them (read fresh, not from a cache), never from memory: so an operator restart
 * neither repeats nor loses a run. A run's Checkpoint is named after the run's time, so even a pass
 * whose status write failed cannot create a run twice.
 */
@ControllerConfiguration(name = "checkpointschedule")
public class CheckpointScheduleReconciler implements Reconciler<CheckpointSchedule>, Cleaner<CheckpointSchedule> {
  private static final Logger log = LoggerFactory.getLogger(CheckpointScheduleReconciler.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  /** The schedule's name becomes a label value, and those have at most 63 characters. */
  static final int MAX_NAME_LENGTH = 63;

  private final KubernetesClient client;
  private final ScheduleCheckpoints checkpoints;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Clock clock;

  public CheckpointScheduleReconciler(KubernetesClient client, EventRecorder events) {
    this(client, events, Clock.systemUTC());
  }

  CheckpointScheduleReconciler(KubernetesClient client, EventRecorder events, Clock clock) {
    this.client = client;
    this.checkpoints = new ScheduleCheckpoints(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.clock = clock;
  }

  /** A spec that passed validation, in the forms the schedule works with. */
  private record ValidSchedule(RunSchedule runs, Duration startingDeadline, ConcurrencyPolicy concurrency,
      RetentionPolicy retention, CheckpointTemplate template, boolean onNodeDrain) {}

  /** Reconcile when a schedule's Checkpoint changes, and when a target's node starts or stops draining. */
  @Override
  public List<EventSource<?, CheckpointSchedule>> prepareEventSources(EventSourceContext<CheckpointSchedule> context) {
    var scheduleCheckpoints = new InformerEventSource<>(
        InformerEventSourceConfiguration.from(Checkpoint.class, CheckpointSchedule.class)
            .withName("schedule-checkpoints")
            .withLabelSelector(Labels.SCHEDULE)
            .withSecondaryToPrimaryMapper(c -> Set.of(
                new ResourceID(c.getMetadata().getLabels().get(Labels.SCHEDULE), c.getMetadata().getNamespace())))
            .build(),
        context);
    var nodes = new InformerEventSource<>(
        InformerEventSourceConfiguration.from(Node.class, CheckpointSchedule.class)
            .withName("schedule-nodes")
            .withSecondaryToPrimaryMapper(node -> context.getPrimaryCache().list()
                .filter(s -> mayRunOn(s, node.getMetadata().getName()))
                .map(ResourceID::fromResource)
                .collect(Collectors.toSet()))
            .withOnUpdateFilter((now, before) -> NodeDrain.isDraining(now) != NodeDrain.isDraining(before))
            .build(),
        context);
    return List.of(scheduleCheckpoints, nodes);
  }

  @Override
  public UpdateControl<CheckpointSchedule> reconcile(CheckpointSchedule cached, Context<CheckpointSchedule> context) {
    CheckpointSchedule schedule = client.resource(cached).get();
    if (schedule == null || schedule.isMarkedForDeletion()) {
      return UpdateControl.noUpdate();
    }
    CheckpointScheduleStatus status = carriedOver(schedule.getStatus());
    ValidSchedule valid;
    try {
      valid = validate(schedule);
    } catch (Refusal refusal) {
      fail(schedule, status, refusal);
      return UpdateControl.noUpdate();
    }
    Instant now = clock.instant();
    List<Checkpoint> owned = checkpoints.list(schedule);
    account(status, owned);
    List<Checkpoint> kept = applyRetention(schedule, valid.retention(), owned, now);
    boolean suspended = Boolean.TRUE.equals(schedule.getSpec().suspend);
    Optional<Instant> nextRun = Optional.empty();
    if (!suspended) {
      takeDrainCheckpoint(schedule, valid, status, kept, now);
      nextRun = run(schedule, valid, status, kept, now);
    }
    status.nextScheduleTime = nextRun.map(Instant::toString).orElse(null);
    ready(schedule, status, suspended);
    statusWriter.replace(schedule, status);
    return rescheduleAt(now, Stream.of(nextRun, valid.retention().nextExpiry(kept)));
  }

  private ValidSchedule validate(CheckpointSchedule schedule) throws Refusal {
    String name = schedule.getMetadata().getName();
    if (name.length() > MAX_NAME_LENGTH) {
      throw new Refusal("NameTooLong", "the schedule's name goes into the label " + Labels.SCHEDULE + " of its"
          + " Checkpoints and may have at most " + MAX_NAME_LENGTH + " characters; this one has " + name.length());
    }
    CheckpointScheduleSpec spec = schedule.getSpec();
    if (spec == null || (spec.checkpointTemplate == null) == (spec.selector == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of spec.checkpointTemplate (a fixed target) or spec.selector (pods by label)");
    }
    if (spec.selector != null) {
      throw new Refusal("SelectorNotSupported", "spec.selector (pods by label) is not supported by this version of"
          + " Stasis yet: name one pod with spec.checkpointTemplate.target.pod, or a process with .process");
    }
    if (spec.containers != null) {
      throw new Refusal("InvalidTarget", "spec.containers only goes with spec.selector");
    }
    var target = spec.checkpointTemplate.target;
    if (target == null || (target.process == null) == (target.pod == null)) {
      throw new Refusal("InvalidTarget", "set exactly one of spec.checkpointTemplate.target.process (a process tree"
          + " on a node) or spec.checkpointTemplate.target.pod");
    }
    RunSchedule runs;
    try {
      runs = RunSchedule.parse(spec.schedule, zone(spec.timeZone));
    } catch (IllegalArgumentException e) {
      throw new Refusal("InvalidSchedule", "spec.schedule: " + e.getMessage());
    }
    if (spec.startingDeadlineSeconds != null && spec.startingDeadlineSeconds < 0) {
      throw new Refusal("InvalidStartingDeadline",
          "spec.startingDeadlineSeconds must be 0 or more, got " + spec.startingDeadlineSeconds);
    }
    RetentionPolicy retention;
    try {
      retention = RetentionPolicy.of(spec.retention);
    } catch (IllegalArgumentException e) {
      throw new Refusal("InvalidRetention", e.getMessage());
    }
    if (spec.checkpointTemplate.ttl != null) {
      try {
        Durations.parse(spec.checkpointTemplate.ttl);
      } catch (IllegalArgumentException e) {
        throw new Refusal("InvalidTtl", "spec.checkpointTemplate.ttl: " + e.getMessage());
      }
    }
    return new ValidSchedule(runs,
        spec.startingDeadlineSeconds == null ? null : Duration.ofSeconds(spec.startingDeadlineSeconds),
        spec.concurrencyPolicyOrDefault(), retention, spec.checkpointTemplate,
        spec.triggers != null && Boolean.TRUE.equals(spec.triggers.onNodeDrain));
  }

  private static ZoneId zone(String timeZone) throws Refusal {
    if (timeZone == null || timeZone.isBlank()) {
      return ZoneOffset.UTC;
    }
    if (!ZoneId.getAvailableZoneIds().contains(timeZone)) {
      throw new Refusal("UnknownTimeZone", "spec.timeZone '" + timeZone
          + "' is not an IANA time zone: write one such as UTC, Europe/Berlin or America/New_York");
    }
    return ZoneId.of(timeZone);
  }

  /**
   * Counts the checkpoints that finished since the last pass (those the last status listed as
   * active) and lists the ones still being taken. One deleted before it finished counts as neither.
   */
  private static void account(CheckpointScheduleStatus status, List<Checkpoint> owned) {
    Map<String, Checkpoint> byName = owned.stream()
        .collect(Collectors.toMap(c -> c.getMetadata().getName(), Function.identity()));
    for (String name : status.active) {
      Checkpoint checkpoint = byName.get(name);
      CheckpointPhase phase = checkpoint == null || checkpoint.getStatus() == null ? null : checkpoint.getStatus().phase;
      if (phase == CheckpointPhase.Completed) {
        status.succeeded++;
      } else if (phase == CheckpointPhase.Failed) {
        status.failed++;
      }
    }
    status.active = new ArrayList<>(owned.stream().filter(CheckpointScheduleReconciler::isActive)
        .map(c -> c.getMetadata().getName()).sorted().toList());
    owned.stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed
            && c.getStatus().completionTime != null)
        .map(c -> Instant.parse(c.getStatus().completionTime))
        .filter(t -> status.lastSuccessfulTime == null || t.isAfter(Instant.parse(status.lastSuccessfulTime)))
        .max(Comparator.naturalOrder())
        .ifPresent(t -> status.lastSuccessfulTime = t.toString());
  }

  private List<Checkpoint> applyRetention(CheckpointSchedule schedule, RetentionPolicy retention,
      List<Checkpoint> owned, Instant now) {
    List<Checkpoint> doomed = retention.toDelete(owned, now);
    if (doomed.isEmpty()) {
      return owned;
    }
    doomed.forEach(c -> client.resource(c).delete());
    events.normal(schedule, "Pruned", "deleted " + names(doomed) + " as the retention policy says");
    return owned.stream().filter(c -> !doomed.contains(c)).toList();
  }

  /** Handles the run that fell due since the last one handled, if any; returns when the next is due. */
  private Optional<Instant> run(CheckpointSchedule schedule, ValidSchedule valid, CheckpointScheduleStatus status,
      List<Checkpoint> kept, Instant now) {
    RunPlan plan = RunPlan.at(valid.runs(), lastHandled(schedule, status), now, valid.startingDeadline());
    if (plan.due().isEmpty()) {
      return plan.next();
    }
    String due = plan.due().get().toString();
    String name = ScheduleCheckpoints.name(schedule, plan.due().get(), Labels.TRIGGER_SCHEDULE);
    if (kept.stream().anyMatch(c -> name.equals(c.getMetadata().getName()))) {
      // taken by a pass whose status write did not land: only the record is missing
      recordRun(schedule, status, name, due);
      return plan.next();
    }
    List<Checkpoint> running = kept.stream().filter(CheckpointScheduleReconciler::isActive)
        .filter(c -> Labels.TRIGGER_SCHEDULE.equals(c.getMetadata().getLabels().get(Labels.TRIGGER))).toList();
    if (plan.tooLate()) {
      status.lastSkippedTime = due;
      status.missed++;
      events.warning(schedule, "MissedRun", "the run due at " + due + " could not start within"
          + " startingDeadlineSeconds (" + valid.startingDeadline().toSeconds() + "s), as the operator was down or the"
          + " schedule suspended or failed: skipped");
      return plan.next();
    }
    if (!running.isEmpty() && valid.concurrency() == ConcurrencyPolicy.Forbid) {
      status.lastSkippedTime = due;
      status.skipped++;
      events.normal(schedule, "RunSkipped", "the run due at " + due + " was skipped: " + names(running)
          + " is still being taken (concurrencyPolicy Forbid)");
      return plan.next();
    }
    if (!running.isEmpty() && valid.concurrency() == ConcurrencyPolicy.Replace) {
      // The agent finishes a dump it started (stopping CRIU mid-dump could harm the workload), then
      // finds its Checkpoint gone and discards the archive.
      running.forEach(c -> client.resource(c).delete());
      running.forEach(c -> status.active.remove(c.getMetadata().getName()));
      events.normal(schedule, "Replaced", "deleted " + names(running) + ", still being taken, for the run due at "
          + due + " (concurrencyPolicy Replace)");
    }
    checkpoints.create(schedule, valid.template(), plan.due().get(), Labels.TRIGGER_SCHEDULE);
    log.info("schedule {}/{}: created checkpoint {} for the run due at {}, {} ms after it",
        schedule.getMetadata().getNamespace(), schedule.getMetadata().getName(), name, due,
        Duration.between(plan.due().get(), clock.instant()).toMillis());
    recordRun(schedule, status, name, due);
    return plan.next();
  }

  private void recordRun(CheckpointSchedule schedule, CheckpointScheduleStatus status, String name, String due) {
    status.lastScheduleTime = due;
    status.runs++;
    if (!status.active.contains(name)) {
      status.active.add(name);
    }
    events.normal(schedule, "Scheduled", "created Checkpoint " + name + " for the run due at " + due);
  }

  /** The latest run handled (taken or skipped); the schedule's creation before its first. */
  private static Instant lastHandled(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    Instant last = Instant.parse(schedule.getMetadata().getCreationTimestamp());
    for (String time : new String[] {status.lastScheduleTime, status.lastSkippedTime}) {
      if (time != null && Instant.parse(time).isAfter(last)) {
        last = Instant.parse(time);
      }
    }
    return last;
  }

  /**
   * One checkpoint per drain: taken when the target's node is first seen draining, recorded in the
   * status, and forgotten once the node is schedulable again.
   */
  private void takeDrainCheckpoint(CheckpointSchedule schedule, ValidSchedule valid, CheckpointScheduleStatus status,
      List<Checkpoint> kept, Instant now) {
    String node = valid.onNodeDrain() ? targetNode(schedule) : null;
    if (node == null || !NodeDrain.isDraining(client.nodes().withName(node).get())) {
      status.drain = null;
      return;
    }
    if (status.drain != null && node.equals(status.drain.node)) {
      return;
    }
    // One that a pass created but could not record (the operator stopped in between) counts for this drain.
    Optional<String> unrecorded = kept.stream().filter(CheckpointScheduleReconciler::isActive)
        .filter(c -> Labels.TRIGGER_DRAIN.equals(c.getMetadata().getLabels().get(Labels.TRIGGER)))
        .map(c -> c.getMetadata().getName()).findFirst();
    String name = unrecorded.orElseGet(() ->
        checkpoints.create(schedule, valid.template(), now.truncatedTo(ChronoUnit.SECONDS), Labels.TRIGGER_DRAIN));
    if (unrecorded.isEmpty()) {
      status.drainTriggered++;
      status.active.add(name);
    }
    status.drain = new DrainCheckpoint(node, name);
    events.normal(schedule, "NodeDraining", "node " + node + " is being drained: took Checkpoint " + name);
  }

  private void ready(CheckpointSchedule schedule, CheckpointScheduleStatus status, boolean suspended) {
    Long generation = schedule.getMetadata().getGeneration();
    status.phase = suspended ? CheckpointScheduleStatus.SUSPENDED : CheckpointScheduleStatus.ACTIVE;
    status.reason = null;
    status.message = suspended ? "suspended: no checkpoints are taken" : null;
    status.observedGeneration = generation;
    Conditions.set(status, Conditions.READY, true, suspended ? "Suspended" : "Scheduled",
        suspended ? status.message : "checkpoints are taken on schedule", generation);
    Conditions.set(status, Conditions.FAILED, false, "Valid", "the spec is valid", generation);
  }

  private void fail(CheckpointSchedule schedule, CheckpointScheduleStatus status, Refusal refusal) {
    Long generation = schedule.getMetadata().getGeneration();
    boolean news = !CheckpointScheduleStatus.FAILED.equals(status.phase) || !refusal.reason().equals(status.reason)
        || !generation.equals(status.observedGeneration);
    status.phase = CheckpointScheduleStatus.FAILED;
    status.reason = refusal.reason();
    status.message = refusal.getMessage();
    status.nextScheduleTime = null;
    status.observedGeneration = generation;
    Conditions.set(status, Conditions.READY, false, refusal.reason(), refusal.getMessage(), generation);
    Conditions.set(status, Conditions.FAILED, true, refusal.reason(), refusal.getMessage(), generation);
    statusWriter.replace(schedule, status);
    if (news) {
      events.warning(schedule, refusal.reason(), refusal.getMessage());
    }
  }

  /**
   * Leaves the schedule's Checkpoints (and archives) in place, dropping the ownerReference so that a
   * cluster's garbage collector does not delete them either; or deletes them when the spec says so.
   */
  @Override
  public DeleteControl cleanup(CheckpointSchedule schedule, Context<CheckpointSchedule> context) {
    List<Checkpoint> owned = checkpoints.list(schedule);
    String id = schedule.getMetadata().getNamespace() + "/" + schedule.getMetadata().getName();
    if (schedule.getSpec() != null && Boolean.TRUE.equals(schedule.getSpec().deleteCheckpointsWithSchedule)) {
      owned.forEach(c -> client.resource(c).delete());
      log.info("schedule {} deleted with its {} checkpoints", id, owned.size());
      return DeleteControl.defaultDelete();
    }
    for (Checkpoint checkpoint : owned) {
      if (ScheduleCheckpoints.isOwnedBy(checkpoint, schedule)) {
        client.resource(checkpoint).edit(c -> {
          c.getMetadata().getOwnerReferences().removeIf(r -> schedule.getMetadata().getUid().equals(r.getUid()));
          return c;
        });
      }
    }
    log.info("schedule {} deleted; its {} checkpoints are kept", id, owned.size());
    return DeleteControl.defaultDelete();
  }

  private static CheckpointScheduleStatus carriedOver(CheckpointScheduleStatus observed) {
    return observed == null ? new CheckpointScheduleStatus() : JSON.convertValue(observed, CheckpointScheduleStatus.class);
  }

  private static boolean isActive(Checkpoint checkpoint) {
    return checkpoint.getMetadata().getDeletionTimestamp() == null
        && (checkpoint.getStatus() == null || !checkpoint.getStatus().phaseOrPending().isTerminal());
  }

  /** The node the target runs on: a process's, or where its pod is scheduled; null when unknown. */
  private String targetNode(CheckpointSchedule schedule) {
    var target = schedule.getSpec().checkpointTemplate.target;
    if (target.process != null) {
      return target.process.node;
    }
    Pod pod = client.pods().inNamespace(schedule.getMetadata().getNamespace()).withName(target.pod.name).get();
    return pod == null || pod.getSpec() == null ? null : pod.getSpec().getNodeName();
  }

  /** For waking schedules on node changes, from the cache: a pod target's node is only known by asking. */
  private static boolean mayRunOn(CheckpointSchedule schedule, String node) {
    var spec = schedule.getSpec();
    if (spec == null || spec.triggers == null || !Boolean.TRUE.equals(spec.triggers.onNodeDrain)
        || spec.checkpointTemplate == null || spec.checkpointTemplate.target == null) {
      return false;
    }
    var target = spec.checkpointTemplate.target;
    return target.pod != null || (target.process != null && node.equals(target.process.node));
  }

  private static String names(List<Checkpoint> checkpoints) {
    return String.join(", ", checkpoints.stream().map(c -> c.getMetadata().getName()).toList());
  }

  private static UpdateControl<CheckpointSchedule> rescheduleAt(Instant now, Stream<Optional<Instant>> times) {
    return times.flatMap(Optional::stream).min(Comparator.naturalOrder())
        .map(t -> UpdateControl.<CheckpointSchedule>noUpdate().rescheduleAfter(
            Duration.between(now, t).isNegative() ? Duration.ZERO : Duration.between(now, t)))
        .orElseGet(UpdateControl::noUpdate);
  }
}
