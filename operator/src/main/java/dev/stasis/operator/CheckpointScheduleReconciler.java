package dev.stasis.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.CheckpointScheduleStatus.DrainCheckpoint;
import dev.stasis.api.CheckpointScheduleStatus.SkippedPod;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Conditions;
import dev.stasis.api.PodTarget;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.ProcessTarget;
import dev.stasis.api.ReasonCount;
import dev.stasis.api.StatusLimits;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.PodTargets;
import dev.stasis.kube.PodTargets.ResolvedPod;
import dev.stasis.kube.StatusWriter;
import dev.stasis.operator.retention.RetentionPolicy;
import dev.stasis.operator.schedule.DrainMigrations;
import dev.stasis.operator.schedule.NodeDrain;
import dev.stasis.operator.schedule.NodeLossFailover;
import dev.stasis.operator.schedule.RunPlan;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import dev.stasis.operator.schedule.ScheduleTarget;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorRequirement;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
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
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs CheckpointSchedules: creates a Checkpoint of each target for each run as it falls due and
 * one at once when a target's node is drained, deletes what the retention policy no longer keeps,
 * and counts runs and outcomes in the status. A target is the template's fixed target, or each
 * Running pod the selector selects; concurrency and retention apply to each target on its own, so
 * a slow pod neither holds up nor prunes away the checkpoints of another.
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
  /** Condition of schedules with a selector: whether the last run found pods. */
  static final String PODS_SELECTED = "PodsSelected";
  /** Skipped pods an Event names; the status counts them all. */
  private static final int SKIPPED_IN_EVENT = 5;

  private final KubernetesClient client;
  private final ScheduleCheckpoints checkpoints;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Clock clock;
  private final NodeLossFailover failover;
  private final DrainMigrations drainMigrations;

  public CheckpointScheduleReconciler(KubernetesClient client, EventRecorder events) {
    this(client, events, Clock.systemUTC());
  }

  CheckpointScheduleReconciler(KubernetesClient client, EventRecorder events, Clock clock) {
    this.client = client;
    this.checkpoints = new ScheduleCheckpoints(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.clock = clock;
    this.failover = new NodeLossFailover(client, events, clock);
    this.drainMigrations = new DrainMigrations(client, events);
  }

  /** What a pass may checkpoint now, and the selected pods it may not (with why). */
  private record Selection(List<ScheduleTarget> targets, List<SkippedPod> unusable, int selectedPods) {
    static final Selection NONE = new Selection(List.of(), List.of(), 0);
  }

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
    try {
      ScheduleValidator.ValidSchedule valid = ScheduleValidator.validate(schedule);
      Instant now = clock.instant();
      List<Checkpoint> owned = checkpoints.list(schedule);
      account(status, owned);
      if (valid.migrateOnDrain()) {
        drainMigrations.follow(schedule, status);
      }
      if (valid.failoverAfter() != null && failsOver(schedule, valid, status, owned)) {
        owned = checkpoints.list(schedule); // it dropped those that waited for the lost node
      }
      pinProcess(schedule, status, owned);
      List<Checkpoint> kept = applyRetention(schedule, valid.retention(), owned, now);
      boolean suspended = Boolean.TRUE.equals(schedule.getSpec().suspend);
      Optional<Instant> nextRun = Optional.empty();
      if (!suspended) {
        RunPlan plan = RunPlan.at(valid.runs(), lastHandled(schedule, status), now, valid.startingDeadline());
        boolean runNow = plan.due().isPresent() && !plan.tooLate();
        Selection selection = runNow || valid.onNodeDrain() ? select(schedule, valid, status) : Selection.NONE;
        takeDrainCheckpoints(schedule, valid, status, kept, selection, now);
        run(schedule, valid, status, kept, plan, selection);
        nextRun = plan.next();
      }
      status.nextScheduleTime = nextRun.map(Instant::toString).orElse(null);
      ready(schedule, status, suspended, valid.selector() != null);
      statusWriter.replace(schedule, status);
      Optional<Instant> nextFailoverCheck = valid.failoverAfter() != null || valid.migrateOnDrain()
          ? Optional.of(now.plus(NodeLossFailover.CHECK_INTERVAL)) : Optional.empty();
      return rescheduleAt(now, Stream.concat(Stream.of(nextRun, nextFailoverCheck),
          perTarget(kept).stream().map(checkpointsOfTarget -> valid.retention().nextExpiry(checkpointsOfTarget))));
    } catch (Refusal refusal) {
      fail(schedule, status, refusal);
      return UpdateControl.noUpdate();
    }
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

  /** Retention applies to each target's checkpoints on its own: each pod keeps its newest Completed one. */
  private List<Checkpoint> applyRetention(CheckpointSchedule schedule, RetentionPolicy retention,
      List<Checkpoint> owned, Instant now) {
    List<Checkpoint> doomed = perTarget(owned).stream()
        .flatMap(checkpointsOfTarget -> retention.toDelete(checkpointsOfTarget, now).stream()).toList();
    if (doomed.isEmpty()) {
      return owned;
    }
    doomed.forEach(c -> client.resource(c).delete());
    events.normal(schedule, "Pruned", "deleted " + names(doomed) + " as the retention policy says");
    return owned.stream().filter(c -> !doomed.contains(c)).toList();
  }

  /**
   * The targets a pass may checkpoint: the template's, or each pod the selector selects that can be
   * checkpointed now (Running, on a node, with the named containers running, no GPUs).
   */
  private Selection select(CheckpointSchedule schedule, ScheduleValidator.ValidSchedule valid, CheckpointScheduleStatus status)
      throws Refusal {
    if (valid.selector() == null) {
      CheckpointSpec spec = valid.template().toCheckpointSpec();
      if (spec.target.process != null) {
        ProcessTarget target = processTarget(schedule, status);
        spec.target = new CheckpointTarget();
        spec.target.process = status.process != null ? target.pinnedTo(status.process) : target;
      } else { // a new target, not the template's: the spec shares it with the cached schedule
        PodTarget template = spec.target.pod;
        spec.target = CheckpointTarget.pod(templatePod(schedule, status), template.container);
        spec.target.pod.containers = template.containers;
      }
      return new Selection(List.of(new ScheduleTarget(null, valid.onNodeDrain() ? templateNode(schedule, status) : null, spec)),
          List.of(), 0);
    }
    List<Pod> pods;
    try {
      pods = client.pods().inNamespace(schedule.getMetadata().getNamespace()).withLabelSelector(valid.selector())
          .list().getItems();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_BAD_REQUEST) {
        throw e;
      }
      throw new Refusal("InvalidSelector", "spec.selector: " + e.getStatus().getMessage());
    }
    List<ScheduleTarget> targets = new ArrayList<>();
    List<SkippedPod> unusable = new ArrayList<>();
    for (Pod pod : pods.stream().sorted(Comparator.comparing(p -> p.getMetadata().getName())).toList()) {
      String name = pod.getMetadata().getName();
      try {
        ResolvedPod resolved = PodTargets.resolve(pod, valid.containers());
        targets.add(ScheduleTarget.selectedPod(name, resolved.node(), schedule.getSpec()));
      } catch (PodTargets.Unusable e) {
        unusable.add(new SkippedPod(name, e.reason(), e.getMessage()));
      }
    }
    return new Selection(targets, unusable, pods.size());
  }

  /** Handles the run that fell due since the last one handled, if any: one Checkpoint for each target. */
  private void run(CheckpointSchedule schedule, ScheduleValidator.ValidSchedule valid, CheckpointScheduleStatus status,
      List<Checkpoint> kept, RunPlan plan, Selection selection) {
    if (plan.due().isEmpty()) {
      return;
    }
    String due = plan.due().get().toString();
    if (plan.tooLate()) {
      status.lastSkippedTime = due;
      status.missed++;
      events.warning(schedule, "MissedRun", "the run due at " + due + " could not start within"
          + " startingDeadlineSeconds (" + valid.startingDeadline().toSeconds() + "s), as the operator was down or the"
          + " schedule suspended or failed: skipped");
      return;
    }
    List<SkippedPod> skipped = new ArrayList<>(selection.unusable());
    List<String> created = new ArrayList<>();
    for (ScheduleTarget target : selection.targets()) {
      String name = ScheduleCheckpoints.name(schedule, plan.due().get(), Labels.TRIGGER_SCHEDULE, target.pod());
      if (kept.stream().anyMatch(c -> name.equals(c.getMetadata().getName()))) {
        created.add(name); // taken by a pass whose status write did not land: only the record is missing
        continue;
      }
      List<Checkpoint> running = kept.stream().filter(CheckpointScheduleReconciler::isActive)
          .filter(c -> Labels.TRIGGER_SCHEDULE.equals(c.getMetadata().getLabels().get(Labels.TRIGGER)))
          .filter(c -> Objects.equals(target.podLabel(), ScheduleCheckpoints.podLabel(c))).toList();
      String of = target.pod() == null ? "" : " of pod " + target.pod();
      if (!running.isEmpty() && valid.concurrency() == ConcurrencyPolicy.Forbid) {
        status.skipped++;
        if (target.pod() != null) {
          skipped.add(new SkippedPod(target.pod(), "CheckpointInProgress",
              names(running) + " is still being taken (concurrencyPolicy Forbid)"));
        }
        events.normal(schedule, "RunSkipped", "the run due at " + due + " was skipped" + of + ": " + names(running)
            + " is still being taken (concurrencyPolicy Forbid)");
        continue;
      }
      if (!running.isEmpty() && valid.concurrency() == ConcurrencyPolicy.Replace) {
        // The agent finishes a dump it started (stopping CRIU mid-dump could harm the workload), then
        // finds its Checkpoint gone and discards the archive.
        running.forEach(c -> client.resource(c).delete());
        running.forEach(c -> status.active.remove(c.getMetadata().getName()));
        events.normal(schedule, "Replaced", "deleted " + names(running) + ", still being taken, for the run due at "
            + due + of + " (concurrencyPolicy Replace)");
      }
      checkpoints.create(schedule, target, plan.due().get(), Labels.TRIGGER_SCHEDULE);
      created.add(name);
    }
    if (created.isEmpty()) {
      status.lastSkippedTime = due;
    } else {
      recordRun(schedule, status, created, due);
      log.info("schedule {}/{}: created {} for the run due at {}, {} ms after it", schedule.getMetadata().getNamespace(),
          schedule.getMetadata().getName(), created, due, Duration.between(plan.due().get(), clock.instant()).toMillis());
    }
    if (valid.selector() != null) {
      reportSelection(schedule, valid.selector(), status, due, selection, skipped);
    }
  }

  private void recordRun(CheckpointSchedule schedule, CheckpointScheduleStatus status, List<String> created, String due) {
    status.lastScheduleTime = due;
    status.runs += created.size();
    created.stream().filter(name -> !status.active.contains(name)).forEach(status.active::add);
    events.normal(schedule, "Scheduled", "created Checkpoint" + (created.size() == 1 ? " " : "s ")
        + String.join(", ", created) + " for the run due at " + due);
  }

  /**
   * What the run made of the selected pods: in the status, a condition, and an Event when pods were
   * left out for other reasons than Forbid (which has its own Events).
   */
  private void reportSelection(CheckpointSchedule schedule, LabelSelector selector, CheckpointScheduleStatus status,
      String due, Selection selection, List<SkippedPod> skipped) {
    Long generation = schedule.getMetadata().getGeneration();
    int selectedPods = selection.selectedPods();
    status.selectedPods = selectedPods;
    status.skippedPods = new ArrayList<>(skipped.subList(0, Math.min(skipped.size(), StatusLimits.MAX_LISTED)));
    status.skippedPodsByReason = skipped.stream().collect(Collectors.groupingBy(p -> p.reason, Collectors.counting()))
        .entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()
            .thenComparing(Map.Entry.comparingByKey()))
        .limit(StatusLimits.MAX_REASONS).map(e -> new ReasonCount(e.getKey(), e.getValue().intValue())).toList();
    if (selectedPods == 0) {
      String message = "the run due at " + due + " selected no pods: no pod in namespace "
          + schedule.getMetadata().getNamespace() + " has labels matching spec.selector (" + describe(selector) + ")";
      Conditions.set(status, PODS_SELECTED, false, "NoPodsSelected", message, generation);
      events.warning(schedule, "NoPodsSelected", message);
      return;
    }
    Conditions.set(status, PODS_SELECTED, true, "PodsSelected", "the last run selected " + selectedPods + " pod"
        + (selectedPods == 1 ? "" : "s") + " and skipped " + skipped.size() + " (status.skippedPods)", generation);
    if (!selection.unusable().isEmpty()) {
      List<SkippedPod> unusable = selection.unusable();
      events.warning(schedule, "PodsSkipped", "the run due at " + due + " skipped " + unusable.size() + " pod"
          + (unusable.size() == 1 ? "" : "s") + " (status.skippedPods): " + String.join("; ", unusable.stream()
              .limit(SKIPPED_IN_EVENT).map(p -> "pod " + p.pod + " (" + p.reason + "): " + p.message).toList())
          + (unusable.size() > SKIPPED_IN_EVENT ? "; …" : ""));
    }
  }

  /** A selector as kubectl writes it: {@code app=sim,tier in (a,b)}. */
  private static String describe(LabelSelector selector) {
    List<String> parts = new ArrayList<>();
    Optional.ofNullable(selector.getMatchLabels()).orElse(Map.of()).entrySet().stream().sorted(Map.Entry.comparingByKey())
        .forEach(e -> parts.add(e.getKey() + "=" + e.getValue()));
    for (LabelSelectorRequirement r : Optional.ofNullable(selector.getMatchExpressions()).orElse(List.of())) {
      switch (r.getOperator()) {
        case "Exists" -> parts.add(r.getKey());
        case "DoesNotExist" -> parts.add("!" + r.getKey());
        default -> parts.add(r.getKey() + " " + r.getOperator().toLowerCase(Locale.ROOT) + " ("
            + String.join(",", r.getValues()) + ")");
      }
    }
    return parts.isEmpty() ? "everything" : String.join(",", parts);
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
   * One checkpoint per target and drain: taken when the target's node is first seen draining,
   * recorded in the status, and forgotten once the node is schedulable again (or the pod is gone,
   * unless a drain's Migration took it: it comes back).
   */
  private void takeDrainCheckpoints(CheckpointSchedule schedule, ScheduleValidator.ValidSchedule valid, CheckpointScheduleStatus status,
      List<Checkpoint> kept, Selection selection, Instant now) {
    List<DrainCheckpoint> drains = new ArrayList<>();
    Map<String, Boolean> draining = new HashMap<>();
    for (ScheduleTarget target : valid.onNodeDrain() ? selection.targets() : List.<ScheduleTarget>of()) {
      String node = target.node();
      if (node == null || !draining.computeIfAbsent(node, n -> NodeDrain.isDraining(client.nodes().withName(n).get()))) {
        continue;
      }
      Optional<DrainCheckpoint> recorded = status.drains.stream()
          .filter(d -> node.equals(d.node) && Objects.equals(target.pod(), d.pod)).findFirst();
      if (recorded.isPresent()) {
        drains.add(recorded.get());
        continue;
      }
      // One that a pass created but could not record (the operator stopped in between) counts for this drain.
      Optional<String> unrecorded = kept.stream().filter(CheckpointScheduleReconciler::isActive)
          .filter(c -> Labels.TRIGGER_DRAIN.equals(c.getMetadata().getLabels().get(Labels.TRIGGER)))
          .filter(c -> Objects.equals(target.podLabel(), ScheduleCheckpoints.podLabel(c)))
          .map(c -> c.getMetadata().getName()).findFirst();
      if (valid.migrateOnDrain()) {
        String migration = drainMigrations.create(schedule, target, schedule.getSpec().failover,
            now.truncatedTo(ChronoUnit.SECONDS));
        status.drainTriggered++;
        DrainCheckpoint drain = new DrainCheckpoint(node, target.pod(), null);
        drain.migration = migration;
        drains.add(drain);
        events.normal(schedule, "NodeDraining", "node " + node + " is being drained: moving the target elsewhere"
            + " (Migration " + migration + ")");
        continue;
      }
      String name = unrecorded.orElseGet(() ->
          checkpoints.create(schedule, target, now.truncatedTo(ChronoUnit.SECONDS), Labels.TRIGGER_DRAIN));
      if (unrecorded.isEmpty()) {
        status.drainTriggered++;
        status.active.add(name);
      }
      drains.add(new DrainCheckpoint(node, target.pod(), name));
      events.normal(schedule, "NodeDraining", "node " + node + " is being drained: took Checkpoint " + name);
    }
    // A drain's Migration takes the pod away and brings it back, in place or under another name: while
    // it is gone its node is unknown, yet that drain is done as long as the node stays drained.
    status.drains.stream().filter(d -> d.migration != null && !drains.contains(d))
        .filter(d -> draining.computeIfAbsent(d.node, n -> NodeDrain.isDraining(client.nodes().withName(n).get())))
        .forEach(drains::add);
    status.drains = drains;
  }

  private void ready(CheckpointSchedule schedule, CheckpointScheduleStatus status, boolean suspended, boolean selects) {
    Long generation = schedule.getMetadata().getGeneration();
    if (!selects) {
      status.selectedPods = null;
      status.skippedPods = new ArrayList<>();
      status.skippedPodsByReason = new ArrayList<>();
      status.conditions.removeIf(c -> PODS_SELECTED.equals(c.getType()));
    }
    status.phase = suspended ? CheckpointScheduleStatus.SUSPENDED : CheckpointScheduleStatus.ACTIVE;
    status.reason = null;
    status.message = suspended ? "suspended: no checkpoints are taken" : null;
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

  /**
   * A fixed process target is pinned to the process the schedule's first checkpoint found under its
   * PID, so that no later run takes another process that got the PID after it ended (its
   * leaveRunning: false would end that one too). A template whose node or pid changed is found anew.
   * A tree restored by a failover or a drain's Migration is pinned from the start, to the process its
   * agent recorded (status.failedOverTarget.to).
   */
  private static void pinProcess(CheckpointSchedule schedule, CheckpointScheduleStatus status, List<Checkpoint> owned) {
    ProcessTarget target = processTarget(schedule, status);
    if (target == null) {
      status.process = null;
      return;
    }
    Optional<ProcessIdentity> restored = target.pinned();
    if (restored.isPresent()) {
      status.process = restored.get();
      status.process.node = target.node;
      return;
    }
    if (status.process != null && Objects.equals(status.process.node, target.node)
        && Objects.equals(status.process.pid, target.pid)) {
      return;
    }
    status.process = owned.stream()
        .filter(c -> c.getStatus() != null && c.getStatus().process != null)
        .filter(c -> Objects.equals(c.getStatus().process.node, target.node)
            && Objects.equals(c.getStatus().process.pid, target.pid))
        .min(Comparator.comparing(c -> c.getMetadata().getCreationTimestamp()))
        .map(c -> c.getStatus().process).orElse(null);
  }

  private static CheckpointScheduleStatus carriedOver(CheckpointScheduleStatus observed) {
    return observed == null ? new CheckpointScheduleStatus() : JSON.convertValue(observed, CheckpointScheduleStatus.class);
  }

  private static boolean isActive(Checkpoint checkpoint) {
    return checkpoint.getMetadata().getDeletionTimestamp() == null
        && (checkpoint.getStatus() == null || !checkpoint.getStatus().phaseOrPending().isTerminal());
  }

  /**
   * The template's process target, or where its last failover restored it (while the template still
   * names what that failover moved away from); null for a pod target or a selector.
   */
  private static ProcessTarget processTarget(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    CheckpointTemplate template = schedule.getSpec().checkpointTemplate;
    ProcessTarget target = template == null || template.target == null ? null : template.target.process;
    return NodeLossFailover.effectiveTarget(target, status);
  }

  /**
   * failover.onNodeLost's look at the template's target: a process tree where it runs now, or the pod
   * of that name where it is scheduled (none while there is no such pod: nothing is known to be lost).
   */
  private boolean failsOver(CheckpointSchedule schedule, ScheduleValidator.ValidSchedule valid,
      CheckpointScheduleStatus status, List<Checkpoint> owned) {
    var target = schedule.getSpec().checkpointTemplate.target;
    Pod pod = target.pod == null ? null
        : client.pods().inNamespace(schedule.getMetadata().getNamespace()).withName(templatePod(schedule, status)).get();
    String node = target.pod == null ? processTarget(schedule, status).node
        : pod == null || pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    if (node == null) {
      failover.follow(schedule, status); // a fenced pod is gone until its Restore makes it again
      return false;
    }
    return failover.check(schedule, schedule.getSpec().failover, valid.failoverAfter(), node, pod, owned, status);
  }

  /** The node the template's target runs on: a process's, or where its pod is scheduled; null when unknown. */
  private String templateNode(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    var target = schedule.getSpec().checkpointTemplate.target;
    if (target.process != null) {
      return processTarget(schedule, status).node;
    }
    Pod pod = client.pods().inNamespace(schedule.getMetadata().getNamespace()).withName(templatePod(schedule, status)).get();
    return pod == null || pod.getSpec() == null ? null : pod.getSpec().getNodeName();
  }

  /**
   * The template's pod, or the pod its last move (a drain's Migration, a failover) restored it as,
   * while the template still names the pod moved.
   */
  private static String templatePod(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    return NodeLossFailover.effectivePod(schedule.getSpec().checkpointTemplate.target.pod.name, status);
  }

  /** For waking schedules on node changes, from the cache: a pod's node is only known by asking. */
  private static boolean mayRunOn(CheckpointSchedule schedule, String node) {
    var spec = schedule.getSpec();
    boolean drains = (spec != null && spec.triggers != null && Boolean.TRUE.equals(spec.triggers.onNodeDrain))
        || (spec != null && spec.failover != null && spec.failover.migratesOnDrain());
    if (!drains) {
      return false;
    }
    if (spec.selector != null) {
      return true;
    }
    if (spec.checkpointTemplate == null || spec.checkpointTemplate.target == null) {
      return false;
    }
    var target = spec.checkpointTemplate.target;
    return target.pod != null || (target.process != null && node.equals(target.process.node));
  }

  /** The checkpoints of each target: all of them for a template, those of each pod for a selector. */
  private static Collection<List<Checkpoint>> perTarget(List<Checkpoint> checkpoints) {
    return checkpoints.stream()
        .collect(Collectors.groupingBy(c -> Objects.toString(ScheduleCheckpoints.podLabel(c), ""))).values();
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
