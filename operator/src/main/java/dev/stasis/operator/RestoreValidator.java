package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Restore;
import dev.stasis.api.ScheduleRef;
import dev.stasis.kube.Labels;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Whether a Restore can go ahead as written, and which Checkpoint it restores: a function of its
 * spec and of the Checkpoints and storages the operator observed. Only the Restore's own namespace
 * is ever looked at, whatever the spec names.
 */
final class RestoreValidator {
  /** RFC 3339 times in UTC sort as text. */
  private static final Comparator<String> NULLS_FIRST = Comparator.nullsFirst(Comparator.naturalOrder());

  private RestoreValidator() {}

  /** What the operator looked up for a Restore, in the Restore's namespace. */
  interface Observed {
    /** The Checkpoint of that name; null when there is none. */
    Checkpoint checkpoint(String name);

    /** The Checkpoints labelled as taken by that schedule (it need not exist any more). */
    List<Checkpoint> ofSchedule(String schedule);

    /** The CheckpointStorage of that name; null when there is none. */
    CheckpointStorage storage(String name);
  }

  /**
   * The Checkpoint the Restore names once it is Completed (the newest Completed one of a schedule it
   * names); empty while it is still being taken.
   */
  static Optional<Checkpoint> checkpointToRestore(Restore restore, Observed observed) throws Refusal {
    var spec = restore.getSpec();
    String namespace = restore.getMetadata().getNamespace();
    if (spec != null && spec.scheduleRef != null && spec.checkpointRef == null) {
      Checkpoint newest = newestOfSchedule(namespace, spec.scheduleRef, observed);
      if (isPodCheckpoint(newest)) {
        requireRegistry(newest, observed);
      }
      return Optional.of(newest);
    }
    if (spec == null || spec.checkpointRef == null || spec.checkpointRef.name == null || spec.scheduleRef != null) {
      throw new Refusal("InvalidCheckpointRef", "set exactly one of spec.checkpointRef.name (the Checkpoint to restore)"
          + " or spec.scheduleRef.name (a schedule whose newest Completed checkpoint to restore)");
    }
    if (spec.checkpointRef.namespace != null && !spec.checkpointRef.namespace.equals(namespace)) {
      throw new Refusal("CrossNamespaceCheckpoint", "a Restore may only use Checkpoints of its own namespace ("
          + namespace + "), not of " + spec.checkpointRef.namespace
          + ": create the Restore in that namespace instead");
    }
    Checkpoint checkpoint = observed.checkpoint(spec.checkpointRef.name);
    if (checkpoint == null) {
      throw new Refusal("CheckpointNotFound", "Checkpoint '" + spec.checkpointRef.name + "' does not exist in namespace "
          + namespace + ": fix spec.checkpointRef.name (kubectl get ckpt -n " + namespace + ")");
    }
    if (checkpoint.isMarkedForDeletion()) {
      // Restores placed before the deletion keep its archive until they are done; no new one starts.
      throw new Refusal("CheckpointDeleted", "Checkpoint '" + spec.checkpointRef.name + "' is being deleted:"
          + " restore another checkpoint");
    }
    CheckpointPhase phase = checkpoint.getStatus() == null ? CheckpointPhase.Pending : checkpoint.getStatus().phaseOrPending();
    if (phase == CheckpointPhase.Failed) {
      throw new Refusal("CheckpointNotCompleted", "Checkpoint '" + spec.checkpointRef.name
          + "' failed (" + checkpoint.getStatus().reason + ") and has no archive to restore: restore another checkpoint");
    }
    if (phase == CheckpointPhase.Completed && isPodCheckpoint(checkpoint)) {
      requireRegistry(checkpoint, observed);
    }
    return phase == CheckpointPhase.Completed ? Optional.of(checkpoint) : Optional.empty();
  }

  static boolean isPodCheckpoint(Checkpoint checkpoint) {
    return checkpoint.getSpec() != null && checkpoint.getSpec().target != null && checkpoint.getSpec().target.pod != null;
  }

  /** Pod checkpoints come back as checkpoint images, which need the storage's registry. */
  private static void requireRegistry(Checkpoint checkpoint, Observed observed) throws Refusal {
    CheckpointStorage storage = observed.storage(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage
          + "' holding the checkpoint no longer exists");
    }
    if (storage.getSpec() == null || storage.getSpec().registry == null) {
      throw new Refusal("RegistryNotConfigured", "CheckpointStorage '" + storage.getMetadata().getName()
          + "' names no registry: pod checkpoints are restored from checkpoint images, so set spec.registry on it");
    }
  }

  /**
   * The newest Completed checkpoint a schedule took (by run or drain), whether or not the schedule
   * still exists; of {@code ref.pod} when named, which is required once the schedule has
   * checkpoints of several selected pods.
   */
  private static Checkpoint newestOfSchedule(String namespace, ScheduleRef ref, Observed observed) throws Refusal {
    String schedule = ref.name;
    List<Checkpoint> completed = observed.ofSchedule(schedule).stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed)
        .filter(c -> !c.isMarkedForDeletion())
        .toList();
    String listing = "kubectl get ckpt -n " + namespace + " -l " + Labels.SCHEDULE + "=" + schedule;
    Set<String> selectedPods = completed.stream()
        .filter(c -> ScheduleCheckpoints.podLabel(c) != null && isPodCheckpoint(c))
        .map(c -> c.getSpec().target.pod.name).collect(Collectors.toCollection(TreeSet::new));
    if (ref.pod != null) {
      List<Checkpoint> ofPod = completed.stream()
          .filter(c -> isPodCheckpoint(c) && ref.pod.equals(c.getSpec().target.pod.name)).toList();
      if (ofPod.isEmpty()) {
        throw new Refusal("NoCompletedCheckpoint", "schedule '" + schedule + "' has no Completed checkpoint of pod '"
            + ref.pod + "' in namespace " + namespace + (selectedPods.isEmpty() ? "" : "; it has some of pods "
            + String.join(", ", selectedPods)) + " (" + listing + "): fix spec.scheduleRef.pod, or wait for one");
      }
      return newest(ofPod);
    }
    if (selectedPods.size() > 1) {
      throw new Refusal("PodRequired", "schedule '" + schedule + "' has checkpoints of several pods ("
          + String.join(", ", selectedPods) + "): set spec.scheduleRef.pod to the one to restore");
    }
    if (completed.isEmpty()) {
      throw new Refusal("NoCompletedCheckpoint", "schedule '" + schedule + "' has no Completed checkpoint in namespace "
          + namespace + " (" + listing + "): wait for one, or restore a Checkpoint by name with spec.checkpointRef");
    }
    return newest(completed);
  }

  private static Checkpoint newest(List<Checkpoint> checkpoints) {
    return checkpoints.stream().max(Comparator.comparing((Checkpoint c) -> c.getStatus().completionTime, NULLS_FIRST)
        .thenComparing(c -> c.getMetadata().getCreationTimestamp(), NULLS_FIRST)).orElseThrow();
  }

}
