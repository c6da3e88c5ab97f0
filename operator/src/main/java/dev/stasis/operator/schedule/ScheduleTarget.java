package dev.stasis.operator.schedule;

import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.PodTarget;
import dev.stasis.kube.Labels;
import java.util.List;

/**
 * One thing a schedule checkpoints: its template's fixed target ({@code pod} null), or one pod its
 * selector selected. Concurrency, retention and drains apply to each target on its own.
 *
 * @param pod the selected pod's name, null for a template's target
 * @param node the node the target runs on, null when unknown
 * @param spec the spec of the target's Checkpoints
 */
public record ScheduleTarget(String pod, String node, CheckpointSpec spec) {

  /**
   * A pod selected by label, with the containers the schedule names (all when none), and the
   * schedule's storage, ttl, retainArchive and backoffLimit.
   */
  public static ScheduleTarget selectedPod(String pod, String node, CheckpointScheduleSpec schedule) {
    PodTarget target = new PodTarget(pod, null);
    List<String> containers = schedule.containers;
    target.containers = containers == null || containers.isEmpty() ? null : containers;
    CheckpointTarget checkpointTarget = new CheckpointTarget();
    checkpointTarget.pod = target;
    CheckpointSpec spec = new CheckpointSpec(checkpointTarget);
    spec.storage = schedule.storage;
    spec.ttl = schedule.ttl;
    spec.retainArchive = schedule.retainArchive;
    spec.backoffLimit = schedule.backoffLimit;
    return new ScheduleTarget(pod, node, spec);
  }

  /** The value of the {@value Labels#POD} label its Checkpoints carry; null for a template's target. */
  public String podLabel() {
    return pod == null ? null : Labels.podValue(pod);
  }
}
