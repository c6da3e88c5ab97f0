package dev.stasis.operator.schedule;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec.Failover;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointScheduleStatus.FailedOverTarget;
import dev.stasis.api.CheckpointScheduleStatus.FailoverRecord;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.ProcessTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestorePodSpec;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.StatusLimits;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.HeartbeatWatch;
import dev.stasis.kube.Labels;
import dev.stasis.kube.Names;
import dev.stasis.kube.PodTargets;
import dev.stasis.metrics.StasisMetrics;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * {@code failover.onNodeLost} of a schedule with a fixed target, a process tree or a pod: when the
 * target's node is lost — its agent's heartbeat unchanged for {@code after} (by the operator's
 * clock) and its Node NotReady or gone — the target's newest Completed checkpoint is restored on
 * another compatible node, once per loss (a loss is the node's last heartbeat: the same silence
 * never fails over twice). The Restore is the schedule's. Fencing: for a tree, the Restore is
 * labelled {@value Labels#FAILOVER_FROM} so that the lost node's agent, when it comes back, ends the
 * old copy (agent.fencing); a pod's object is deleted at once, without grace (its kubelet cannot
 * take part), so that its kubelet, when it reaches the API server again, ends the old copy, and the
 * pod comes back under its name. Once the target runs again, the schedule's later checkpoints (and
 * failovers) follow it: status.failedOverTarget for a tree, the pod's name for a pod.
 */
public final class NodeLossFailover {
  /** How often a schedule with failover looks at its target's node: a fraction of the shortest {@code after}. */
  public static final Duration CHECK_INTERVAL = Duration.ofSeconds(10);
  private static final DateTimeFormatter NAME_TIME = DateTimeFormatter.ofPattern("yyyyMMddHHmmss").withZone(ZoneOffset.UTC);

  private final KubernetesClient client;
  private final EventRecorder events;
  private final Clock clock;
  private final HeartbeatWatch heartbeats = new HeartbeatWatch();

  public NodeLossFailover(KubernetesClient client, EventRecorder events, Clock clock) {
    this.client = client;
    this.events = events;
    this.clock = clock;
  }

  /**
   * The process the schedule checkpoints: the template's, or the restored tree its last failover or
   * drain moved it to (pinned to that process's identity), as long as the template still names what
   * that move took away.
   */
  public static ProcessTarget effectiveTarget(ProcessTarget template, CheckpointScheduleStatus status) {
    FailedOverTarget moved = status.failedOverTarget;
    if (template == null || moved == null || moved.from == null || moved.to == null
        || !Objects.equals(moved.from.node, template.node) || !Objects.equals(moved.from.pid, template.pid)) {
      return template;
    }
    ProcessTarget to = new ProcessTarget(moved.to.node, moved.to.pid);
    to.startTicks = moved.to.startTicks;
    to.bootId = moved.to.bootId;
    return to;
  }

  /**
   * The pod the schedule checkpoints: the template's, or the one a drain's Migration or a failover
   * restored it as (it may have another name), as long as the template still names the pod moved.
   */
  public static String effectivePod(String template, CheckpointScheduleStatus status) {
    FailedOverTarget moved = status.failedOverTarget;
    return template == null || moved == null || moved.toPod == null || !template.equals(moved.fromPod)
        ? template : moved.toPod;
  }

  /**
   * One look: follows the failovers begun before, and begins one when the target's {@code node} is
   * lost. {@code pod}: the template's pod, as it is now (null for a process tree). {@code owned}: the
   * schedule's Checkpoints; {@code status} is the status this pass writes. True when a failover
   * began, which deleted the checkpoints that waited for the lost node.
   */
  public boolean check(CheckpointSchedule schedule, Failover failover, Duration after, String node, Pod pod,
      List<Checkpoint> owned, CheckpointScheduleStatus status) {
    follow(schedule, status);
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    Optional<Duration> silent = heartbeats.silence(node, profile, clock.instant());
    if (silent.isEmpty() || silent.get().compareTo(after) < 0) {
      return false;
    }
    String lastHeartbeat = profile.getStatus().heartbeatTime;
    if (status.failovers.stream().anyMatch(f -> node.equals(f.lostNode) && lastHeartbeat.equals(f.lastHeartbeat))) {
      return false; // once per loss
    }
    Optional<String> notLost = nodeStillReady(node);
    if (notLost.isPresent()) {
      return false; // only its agent is down: its kubelet restarts it, and the workload runs on there
    }
    FailoverRecord record = new FailoverRecord();
    record.lostNode = node;
    record.lastHeartbeat = lastHeartbeat;
    record.time = clock.instant().truncatedTo(ChronoUnit.SECONDS).toString();
    String lost = "node " + node + " is lost: its agent's heartbeat has stayed " + lastHeartbeat + " for "
        + silent.get().toSeconds() + "s (spec.failover.onNodeLost.after " + failover.onNodeLost.after + ") and "
        + nodeState(node);
    Optional<Checkpoint> newest = owned.stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed)
        .filter(c -> node.equals(c.getStatus().node) && c.getStatus().completionTime != null)
        .max(Comparator.comparing(c -> Instant.parse(c.getStatus().completionTime)));
    Optional<OwnerReference> replacing = pod == null ? Optional.empty() : PodTargets.replacingController(pod);
    if (replacing.isPresent()) {
      return notFailedOver(schedule, status, record, "PodHasController", lost + "; pod " + pod.getMetadata().getName()
          + " belongs to " + replacing.get().getKind() + " " + replacing.get().getName() + ", which starts its copy"
          + " elsewhere itself: Stasis restores only pods of no controller (or of a Restore), so that it never runs twice");
    }
    if (newest.isEmpty()) {
      return notFailedOver(schedule, status, record, "NoCompletedCheckpoint", lost
          + "; but the schedule has no Completed checkpoint of its target there to restore");
    }
    Checkpoint checkpoint = newest.get();
    record.checkpoint = checkpoint.getMetadata().getName();
    Instant taken = Instant.parse(Objects.requireNonNullElse(checkpoint.getStatus().startTime,
        checkpoint.getStatus().completionTime));
    record.lostWorkSeconds = Duration.between(taken, clock.instant()).toSeconds();
    boolean podFenced = pod != null && failover.fences() && fence(pod);
    record.restore = createRestore(schedule, failover, checkpoint, node, lastHeartbeat, pod, podFenced);
    record.phase = RestorePhase.Pending.name();
    add(status, record);
    dropUnstarted(schedule, owned, node, status);
    String fencing = !failover.fences() ? ""
        : pod == null ? "; when node " + node + "'s agent comes back it ends the old copy"
        : "; pod " + pod.getMetadata().getName() + " was deleted without grace, so that its kubelet ends the old copy"
            + " when node " + node + " comes back, and it comes back under its name";
    events.warning(schedule, "FailedOver", lost + "; restoring its newest Completed checkpoint " + record.checkpoint
        + " (taken " + record.lostWorkSeconds + "s ago: that much work is lost) elsewhere as Restore " + record.restore
        + fencing);
    return true;
  }

  private boolean notFailedOver(CheckpointSchedule schedule, CheckpointScheduleStatus status, FailoverRecord record,
      String reason, String message) {
    record.phase = RestorePhase.Failed.name();
    record.reason = reason;
    record.message = message;
    add(status, record);
    events.warning(schedule, record.reason, record.message);
    StasisMetrics.failoverFinished(record.phase, record.reason, null);
    return false;
  }

  /**
   * Deletes the lost node's pod (that one: its UID) at once: the node cannot honour a grace period,
   * and a graceful deletion would wait for it forever. Its kubelet, when it reaches the API server
   * again, finds the pod gone and ends its containers. False when the pod changed meanwhile.
   */
  private boolean fence(Pod pod) {
    var pods = client.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName());
    Pod now = pods.get();
    if (now == null || !now.getMetadata().getUid().equals(pod.getMetadata().getUid())) {
      return now == null;
    }
    pods.withGracePeriod(0).delete();
    return true;
  }

  /** The failovers begun before whose Restore ended since: recorded, and the target followed where it runs now. */
  public void follow(CheckpointSchedule schedule, CheckpointScheduleStatus status) {
    for (FailoverRecord record : status.failovers) {
      if (!RestorePhase.Pending.name().equals(record.phase) || record.restore == null) {
        continue;
      }
      Restore restore = client.resources(Restore.class).inNamespace(schedule.getMetadata().getNamespace())
          .withName(record.restore).get();
      RestorePhase phase = restore == null ? RestorePhase.Failed
          : restore.getStatus() == null ? RestorePhase.Pending : restore.getStatus().phaseOrPending();
      if (phase == RestorePhase.Completed) {
        record.phase = phase.name();
        record.node = restore.getStatus().node;
        record.restoredPid = restore.getStatus().restoredPid;
        record.restoredProcess = restore.getStatus().restoredProcess;
        record.restoredPod = restore.getStatus().restoredPod;
        moveTarget(schedule, status, record, restore.getStatus().completionTime);
        Duration down = Duration.between(Instant.parse(record.lastHeartbeat), Instant.parse(restore.getStatus().completionTime));
        events.normal(schedule, "FailoverRestored", "the target of lost node " + record.lostNode + " runs again on node "
            + record.node + (record.restoredPid != null ? " (PID " + record.restoredPid + ")"
            : record.restoredPod != null ? " (pod " + record.restoredPod + ")" : "") + ", "
            + down.toSeconds() + "s after its last heartbeat; " + followed(status));
        StasisMetrics.failoverFinished(record.phase, "Restored", down);
      } else if (phase == RestorePhase.Failed) {
        record.phase = phase.name();
        record.reason = restore == null ? "RestoreDeleted" : restore.getStatus().reason;
        record.message = restore == null ? "Restore " + record.restore + " was deleted" : restore.getStatus().message;
        events.warning(schedule, "FailoverFailed", "the failover of lost node " + record.lostNode + " failed ("
            + record.reason + "): " + record.message);
        StasisMetrics.failoverFinished(record.phase, record.reason, null);
      }
    }
  }

  /** What later runs take after a move, said in its Event. */
  static String followed(CheckpointScheduleStatus status) {
    FailedOverTarget moved = status.failedOverTarget;
    return moved != null && moved.from != null && moved.to == null
        ? "its restored tree had ended before its agent saw it, so later checkpoints do not follow it"
        : "later checkpoints are taken there";
  }

  /** Later runs checkpoint the restored tree: the template's target, as it was, now runs as {@code record}'s process. */
  private static void moveTarget(CheckpointSchedule schedule, CheckpointScheduleStatus status, FailoverRecord record,
      String since) {
    moveTarget(schedule, status, record.node, record.restoredProcess, record.restoredPod, record.restore, since);
  }

  /**
   * The template's target, as it was, runs on {@code node} since {@code since}, as process {@code
   * root} (a tree) or as pod {@code pod}, moved there by {@code by} (a failover's Restore, a drain's
   * Migration): later runs take it there. A tree is followed only as an identity, pinned to the
   * restored root's start ticks and boot id: its PID alone may name another process by the next run.
   * A tree that ended before its agent saw it has none: the move is recorded without {@code to}, and
   * later runs take the template's target, which the move ended.
   */
  static void moveTarget(CheckpointSchedule schedule, CheckpointScheduleStatus status, String node,
      ProcessIdentity root, String pod, String by, String since) {
    CheckpointTarget template = schedule.getSpec().checkpointTemplate.target;
    FailedOverTarget moved = new FailedOverTarget();
    if (template.process != null) {
      moved.from = new ProcessTarget(template.process.node, template.process.pid);
      moved.to = root == null || root.pid == null ? null : new ProcessTarget(node, root.pid).pinnedTo(root);
    } else if (template.pod != null && pod != null) {
      moved.fromPod = template.pod.name;
      moved.toPod = pod;
    } else {
      return;
    }
    moved.by = by;
    moved.since = since;
    status.failedOverTarget = moved;
  }

  /**
   * The failover's Restore; a tree's labelled for its fencing, a fenced pod's under the pod's name
   * (the old pod object is gone), an unfenced pod's under a name of its own.
   */
  private String createRestore(CheckpointSchedule schedule, Failover failover, Checkpoint checkpoint, String lostNode,
      String lastHeartbeat, Pod pod, boolean podFenced) {
    String name = Names.shortened(schedule.getMetadata().getName() + "-failover-"
        + NAME_TIME.format(Instant.parse(lastHeartbeat)), Names.MAX_OBJECT_NAME);
    RestorePlacement placement = failover.placement == null ? new RestorePlacement()
        : client.getKubernetesSerialization().clone(failover.placement);
    placement.excludeNodes = new ArrayList<>(placement.excludeNodes == null ? List.of() : placement.excludeNodes);
    placement.excludeNodes.add(lostNode);
    placement.nodeName = Objects.equals(placement.nodeName, lostNode) ? null : placement.nodeName;
    RestoreSpec spec = new RestoreSpec();
    spec.checkpointRef = new CheckpointRef(checkpoint.getMetadata().getName());
    spec.placement = placement;
    if (podFenced) {
      spec.pod = new RestorePodSpec();
      spec.pod.name = pod.getMetadata().getName();
    }
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(schedule.getMetadata().getNamespace())
        .withLabels(failover.fences() && pod == null ? Map.of(Labels.FAILOVER_FROM, lostNode) : Map.of())
        .withOwnerReferences(ScheduleCheckpoints.ownerReference(schedule))
        .build());
    restore.setSpec(spec);
    try {
      client.resource(restore).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
      // created by an earlier pass whose status write did not land: the same loss, not a new one
    }
    return name;
  }

  /**
   * The schedule's checkpoints that wait for the lost node's agent and never started: they would
   * block later runs (concurrencyPolicy Forbid) and, if the node came back, checkpoint the old copy.
   */
  private void dropUnstarted(CheckpointSchedule schedule, List<Checkpoint> owned, String node,
      CheckpointScheduleStatus status) {
    for (Checkpoint c : owned) {
      if (c.getStatus() != null && node.equals(c.getStatus().node) && c.getStatus().phaseOrPending() == CheckpointPhase.Pending) {
        client.resource(c).delete();
        status.active.remove(c.getMetadata().getName());
      }
    }
  }

  /** Why the node is not lost although its agent is silent: its Node is Ready. */
  private Optional<String> nodeStillReady(String node) {
    Node n = client.nodes().withName(node).get();
    boolean ready = n != null && n.getStatus() != null && n.getStatus().getConditions() != null
        && n.getStatus().getConditions().stream().anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    return ready ? Optional.of("Node " + node + " is Ready") : Optional.empty();
  }

  private String nodeState(String node) {
    return client.nodes().withName(node).get() == null ? "there is no Node " + node : "its Node is NotReady";
  }

  /** The newest failovers, oldest first: the status stays small however often nodes are lost. */
  private static void add(CheckpointScheduleStatus status, FailoverRecord record) {
    status.failovers.add(record);
    while (status.failovers.size() > StatusLimits.MAX_LISTED) {
      status.failovers.remove(0);
    }
  }
}
