package dev.stasis.operator.schedule;

import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec.Failover;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationSpec;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code failover.onDrain} of a schedule with a fixed target (a process tree, or a pod): when the
 * target's node is drained, a Migration moves it to another compatible node (checkpoint, stop,
 * restore), one per drain, named like a drain checkpoint, labelled {@value Labels#SCHEDULE} and
 * owned by the schedule. Once one completed, the schedule's later runs take a process tree where it
 * runs now (its node and PID). A pod's drain Migration deletes the pod once its checkpoint is
 * stored: a drain that a PodDisruptionBudget holds up (README) then finds it gone and goes on; the
 * pod comes back under a new name (MigrationChildren), which the template must be pointed at.
 */
public final class DrainMigrations {
  private final KubernetesClient client;
  private final EventRecorder events;

  public DrainMigrations(KubernetesClient client, EventRecorder events) {
    this.client = client;
    this.events = events;
  }

  /** Creates the Migration of {@code target} off its draining node, unless it exists already; returns its name. */
  public String create(CheckpointSchedule schedule, ScheduleTarget target, Failover failover, Instant now) {
    // One a pass created but could not record (the operator stopped in between) is this drain's.
    Optional<Migration> underWay = migrations(schedule).stream()
        .filter(m -> m.getStatus() == null || !m.getStatus().phaseOrPending().isTerminal())
        .filter(m -> sameTarget(m, target)).findFirst();
    if (underWay.isPresent()) {
      return underWay.get().getMetadata().getName();
    }
    String name = ScheduleCheckpoints.name(schedule, now, Labels.TRIGGER_DRAIN, null);
    MigrationSpec spec = new MigrationSpec(client.getKubernetesSerialization().clone(target.spec().target));
    spec.storage = target.spec().storage;
    spec.placement = failover.placement == null ? null : client.getKubernetesSerialization().clone(failover.placement);
    spec.allowSourceNode = failover.allowSourceNode;
    Migration migration = new Migration();
    migration.setMetadata(new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(schedule.getMetadata().getNamespace())
        .withLabels(Map.of(Labels.SCHEDULE, schedule.getMetadata().getName(), Labels.TRIGGER, Labels.TRIGGER_DRAIN))
        .withOwnerReferences(ScheduleCheckpoints.ownerReference(schedule))
        .build());
    migration.setSpec(spec);
    try {
      client.resource(migration).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
      // created by a pass whose status write did not land: the same drain
    }
    return name;
  }

  /** The newest of the schedule's Migrations that completed since the target last moved: it runs there now. */
  public void follow(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    String since = status.failedOverTarget == null ? null : status.failedOverTarget.since;
    Optional<Migration> newest = migrations(schedule).stream()
        .filter(m -> m.getStatus() != null && m.getStatus().phase == MigrationPhase.Completed
            && m.getStatus().completionTime != null)
        .filter(m -> since == null || Instant.parse(m.getStatus().completionTime).isAfter(Instant.parse(since)))
        .max(Comparator.comparing(m -> Instant.parse(m.getStatus().completionTime)));
    newest.ifPresent(m -> {
      NodeLossFailover.moveTarget(schedule, status, m.getStatus().node, m.getStatus().restoredProcess,
          m.getStatus().restoredPod, m.getMetadata().getName(), m.getStatus().completionTime);
      events.normal(schedule, "TargetMoved", "Migration " + m.getMetadata().getName() + " moved the target off node "
          + m.getStatus().sourceNode + " to node " + m.getStatus().node + (m.getStatus().restoredPid != null
          ? " (PID " + m.getStatus().restoredPid + ")" : " (pod " + m.getStatus().restoredPod + ")")
          + "; " + NodeLossFailover.followed(status));
    });
  }

  /** A Migration of this target off this node: the same tree's node, or the same pod. */
  private static boolean sameTarget(Migration migration, ScheduleTarget target) {
    var moving = migration.getSpec().target;
    var wanted = target.spec().target;
    return moving.process != null ? wanted.process != null && target.node().equals(moving.process.node)
        : moving.pod != null && wanted.pod != null && moving.pod.name.equals(wanted.pod.name);
  }

  private List<Migration> migrations(CheckpointSchedule schedule) {
    return client.resources(Migration.class).inNamespace(schedule.getMetadata().getNamespace())
        .withLabel(Labels.SCHEDULE, schedule.getMetadata().getName()).list().getItems();
  }
}
