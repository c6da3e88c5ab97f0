package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.ProcessTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.SealedGrant;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.PodTargets;
import dev.stasis.kube.RecordedArchive;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.retention.ArchiveReaders;
import dev.stasis.operator.retention.CheckpointExpiry;
import dev.stasis.operator.schedule.Durations;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Validates a Checkpoint and hands it to the agent of its node (label {@value Labels#NODE}). From
 * then on the agent owns the status; the operator only cleans up the archive on deletion.
 */
@ControllerConfiguration(name = "checkpoint", generationAwareEventProcessing = false)
public class CheckpointReconciler implements Reconciler<Checkpoint>, Cleaner<Checkpoint> {
  private static final Logger log = LoggerFactory.getLogger(CheckpointReconciler.class);
  private static final Duration CLEANUP_RETRY = Duration.ofSeconds(30);
  /** How often a deletion that waits for Restores looks again whether they are done. */
  static final Duration READERS_POLL = Duration.ofSeconds(5);
  static final String ARCHIVE_IN_USE = "ArchiveInUse";

  private final KubernetesClient client;
  private final ClusterCache cluster;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final RefusalRetries retries;
  private final AgentLoss agentLoss;
  private final GrantIssuer grants;
  private final CheckpointImages checkpointImages;
  private final Clock clock;

  public CheckpointReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events,
      RetryPolicy retryPolicy) {
    this(client, cluster, events, retryPolicy, Clock.systemUTC());
  }

  CheckpointReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events, RetryPolicy retryPolicy,
      Clock clock) {
    this.client = client;
    this.cluster = cluster;
    this.clock = clock;
    this.storages = new StorageBinding(client, cluster);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.retries = new RefusalRetries(retryPolicy, statusWriter, events, clock);
    this.agentLoss = new AgentLoss(cluster, statusWriter, events, clock);
    this.grants = new GrantIssuer(cluster, storages);
    this.checkpointImages = new CheckpointImages(client, storages, statusWriter, events, clock);
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus observed = checkpoint.getStatus();
    if (observed != null && observed.phase != null && observed.phase != CheckpointPhase.Pending) {
      // the agent's now, or finished
      return observed.phase.isTerminal() ? expireWhenDue(checkpoint) : agentsWork(checkpoint);
    }
    if (isAssigned(checkpoint)) {
      return agentsWork(checkpoint);
    }
    Optional<Duration> retryDue = retries.untilRetry(observed);
    if (retryDue.isPresent()) {
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(retryDue.get());
    }
    try {
      Assignment assignment = validate(checkpoint);
      CheckpointStorage storage = usableStorage(checkpoint);
      assign(checkpoint, assignment, storage);
    } catch (Refusal refusal) {
      Optional<Duration> retryIn = retries.retryLater(checkpoint, refusal, backoffLimit(checkpoint), pending(checkpoint));
      if (retryIn.isPresent()) {
        return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(retryIn.get());
      }
      fail(checkpoint, refusal);
    }
    return UpdateControl.noUpdate();
  }

  private static int backoffLimit(Checkpoint checkpoint) {
    return checkpoint.getSpec() == null ? 0 : checkpoint.getSpec().backoffLimitOrDefault();
  }

  private static CheckpointStatus pending(Checkpoint checkpoint) {
    CheckpointStatus status = new CheckpointStatus();
    status.phase = CheckpointPhase.Pending;
    status.target = target(checkpoint);
    return status;
  }

  /** For the TARGET column; the status keeps it from here on (the agents' writes change only their fields). */
  private static String target(Checkpoint checkpoint) {
    var spec = checkpoint.getSpec();
    return spec == null || spec.target == null ? null : spec.target.describe();
  }

  private static boolean isAssigned(Checkpoint checkpoint) {
    CheckpointStatus status = checkpoint.getStatus();
    return status != null && status.node != null
        && status.node.equals(Labels.node(checkpoint));
  }

  /** The node whose agent does the work and, for pod targets, the containers it checkpoints. */
  private record Assignment(String node, List<ContainerCheckpointStatus> containers) {}

  /** The CRD schema checks the same; this guards clusters where it was bypassed. */
  private Assignment validate(Checkpoint checkpoint) throws Refusal {
    var spec = checkpoint.getSpec();
    if (spec == null || spec.target == null || (spec.target.process == null) == (spec.target.pod == null)) {
      throw new Refusal("InvalidTarget",
          "set exactly one of spec.target.process (a process tree on a node) or spec.target.pod");
    }
    if (spec.ttl != null) {
      try {
        Durations.parse(spec.ttl);
      } catch (IllegalArgumentException e) {
        throw new Refusal("InvalidTtl", "spec.ttl: " + e.getMessage());
      }
    }
    if (spec.target.pod != null) {
      return validatePod(checkpoint);
    }
    // Whose process the PID is only the node's agent can tell: it checks before it touches it.
    ProcessTarget process = spec.target.process;
    if (process.node == null || process.node.isBlank()) {
      throw new Refusal("InvalidTarget", "spec.target.process.node is required: the node the process runs on");
    }
    if (process.pid == null || process.pid < 2) {
      throw new Refusal("InvalidPid",
          "spec.target.process.pid must be the PID of a workload process (2 or more), got " + process.pid);
    }
    if (cluster.nodeProfile(process.node) == null) {
      throw new Refusal("NodeNotFound",
          "no Stasis agent runs on node '" + process.node + "' (there is no NodeProfile of that name): "
              + "check the node name (kubectl get nodeprof) and that the agent runs there");
    }
    return new Assignment(process.node, null);
  }

  /** The pod in the Checkpoint's own namespace (never another), checkpointed by its node's agent. */
  private Assignment validatePod(Checkpoint checkpoint) throws Refusal {
    CheckpointOptions options = checkpoint.getSpec().optionsOrDefaults();
    List<String> unsupported = optionsNotForPods(options);
    if (!unsupported.isEmpty()) {
      throw new Refusal("OptionNotSupported", "the kubelet checkpoints pods with the runtime's own CRIU options, so "
          + String.join(", ", unsupported) + " cannot apply to a pod target: remove "
          + (unsupported.size() > 1 ? "them" : "it") + " from spec.options");
    }
    PodTargets.ResolvedPod pod;
    try {
      pod = PodTargets.resolve(client, checkpoint.getMetadata().getNamespace(), checkpoint.getSpec().target.pod);
    } catch (PodTargets.Unusable e) {
      throw new Refusal(e.reason(), e.getMessage());
    }
    if (cluster.nodeProfile(pod.node()) == null) {
      throw new Refusal("NodeNotFound", "pod '" + pod.pod().getMetadata().getName() + "' runs on node '" + pod.node()
          + "', where no Stasis agent runs (there is no NodeProfile of that name): deploy the agent there");
    }
    return new Assignment(pod.node(), pod.containers());
  }

  /** Options that only CRIU run by the agent can honour; the kubelet's API takes none of them. */
  private static List<String> optionsNotForPods(CheckpointOptions options) {
    List<String> unsupported = new ArrayList<>();
    if (!options.leaveRunning()) unsupported.add("leaveRunning: false");
    if (Boolean.TRUE.equals(options.tcpEstablished)) unsupported.add("tcpEstablished");
    if (Boolean.TRUE.equals(options.fileLocks)) unsupported.add("fileLocks");
    if (Boolean.TRUE.equals(options.shellJob)) unsupported.add("shellJob");
    if (options.externalMounts != null && !options.externalMounts.isEmpty()) unsupported.add("externalMounts");
    return unsupported;
  }

  private CheckpointStorage usableStorage(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage;
    try {
      storage = storages.resolve(checkpoint.getSpec().storage);
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageNotFound", e.getMessage());
    }
    var notAllowed = StorageBinding.refusal(storage, checkpoint.getMetadata().getNamespace());
    if (notAllowed.isPresent()) {
      throw new Refusal("StorageNotAllowed", notAllowed.get());
    }
    CheckpointStorageStatus status = storage.getStatus();
    if (status != null && CheckpointStorageStatus.UNAVAILABLE.equals(status.phase)) {
      // The storage's own reason says what to fix (its encryption key, its bucket).
      throw new Refusal(status.reason != null ? status.reason : "StorageUnavailable", "CheckpointStorage '"
          + storage.getMetadata().getName()
          + "' is unavailable: " + status.message);
    }
    return storage;
  }

  private void assign(Checkpoint checkpoint, Assignment assignment, CheckpointStorage usable) throws Refusal {
    String node = assignment.node();
    String storage = usable.getMetadata().getName();
    SealedGrant grant = grants.forCheckpoint(checkpoint, usable, node, containerNames(assignment.containers())).orElse(null);
    CheckpointStatus status = pending(checkpoint);
    RefusalRetries.carryAttempts(checkpoint, status);
    status.node = node;
    status.grant = grant;
    status.storage = storage;
    status.containers = assignment.containers();
    status.message = "waiting for the agent on node " + node;
    status.observedGeneration = checkpoint.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, "Pending", status.message, status.observedGeneration);
    // Status first, then the label its agent watches; each write conditional on the version read before.
    checkpoint = Labels.assign(client, statusWriter.replace(checkpoint, status), node);
    events.normal(checkpoint, "Assigned", "assigned to the agent on node " + node + ", storage " + storage);
  }

  private static List<String> containerNames(List<ContainerCheckpointStatus> containers) {
    return containers == null ? List.of() : containers.stream().map(c -> c.name).toList();
  }

  /**
   * The agent's to do: the grant is sealed again when the node's agent published a new key (its
   * old one is gone with its work folder), and the work fails if that agent is gone.
   */
  private UpdateControl<Checkpoint> agentsWork(Checkpoint checkpoint) {
    if (grants.sealedToAnotherKey(checkpoint.getStatus())) {
      try {
        CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
        SealedGrant grant = storage == null ? null : grants.forCheckpoint(checkpoint, storage,
            checkpoint.getStatus().node, containerNames(checkpoint.getStatus().containers)).orElse(null);
        statusWriter.update(checkpoint, c -> c.getStatus() != null && !c.getStatus().phaseOrPending().isTerminal(),
            c -> c.getStatus().grant = grant);
      } catch (Refusal refusal) {
        log.warn("cannot seal the grant of checkpoint {}/{} again: {}", checkpoint.getMetadata().getNamespace(),
            checkpoint.getMetadata().getName(), refusal.getMessage());
      }
    }
    return failWhenAgentGone(checkpoint);
  }

  private void fail(Checkpoint checkpoint, Refusal refusal) {
    CheckpointStatus status = new CheckpointStatus();
    status.target = target(checkpoint);
    retries.fail(checkpoint, refusal, backoffLimit(checkpoint), status);
    statusWriter.replace(checkpoint, status);
    events.warning(checkpoint, refusal.reason(), status.message);
    StasisMetrics.checkpointFinished(status);
  }

  /**
   * Only the agent of its node can take a checkpoint (the process lives there). If that agent is
   * gone, the checkpoint fails with the reason instead of waiting forever; unless the agent had
   * stored and recorded the archive, which it does before it ends a workload: then the checkpoint
   * is finished from that record.
   */
  private UpdateControl<Checkpoint> failWhenAgentGone(Checkpoint checkpoint) {
    if (checkpoint.getStatus().phaseOrPending() == CheckpointPhase.Running && RecordedArchive.isRecorded(checkpoint)) {
      Optional<String> gone = agentLoss.gone(checkpoint.getStatus().node);
      if (gone.isPresent()) {
        return finishFromRecord(checkpoint, gone.get());
      }
    }
    boolean pending = checkpoint.getStatus().phaseOrPending() == CheckpointPhase.Pending;
    return agentLoss.failWhenGone(checkpoint, CheckpointStatus::phaseOrPending, gone -> gone + (pending
        ? ": the checkpoint was not taken and the process was not touched"
        : ", in the middle of this checkpoint: nothing was stored as complete. A process it left stopped "
            + "(leaveRunning: false) is resumed when the agent starts again")
        + "; take a new checkpoint once the agent runs", StasisMetrics::checkpointFinished);
  }

  /**
   * The agent was lost after it had stored and recorded the archive, and may have ended the
   * workload (leaveRunning: false): the archive may be all that is left of it. When the storage
   * holds what was recorded, the checkpoint is Completed; when not, it fails, never to be taken again.
   */
  private UpdateControl<Checkpoint> finishFromRecord(Checkpoint checkpoint, String gone) {
    CheckpointStatus status = checkpoint.getStatus();
    CheckpointStorage storage = storages.find(status.storage);
    Optional<String> mismatch;
    if (storage == null) {
      mismatch = Optional.of("its CheckpointStorage '" + status.storage + "' no longer exists");
    } else {
      try (ObjectStore store = storages.open(storage)) {
        mismatch = RecordedArchive.mismatch(store, checkpoint);
      } catch (IOException e) {
        log.warn("cannot read the recorded archive of checkpoint {}/{} yet: {}", checkpoint.getMetadata().getNamespace(),
            checkpoint.getMetadata().getName(), e.getMessage());
        return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(CLEANUP_RETRY);
      }
    }
    String node = status.node;
    String lost = gone + ", after it had stored and recorded this checkpoint's archive. Whether it then ended the"
        + " workload (leaveRunning: false) is known only on node " + node;
    Long generation = checkpoint.getMetadata().getGeneration();
    if (mismatch.isPresent()) {
      String message = lost + "; and the storage no longer holds the archive: " + mismatch.get() + ". Take a new checkpoint";
      statusWriter.update(checkpoint, c -> isRunningOn(c, node), c -> c.getStatus().fail("ArchiveMissing", message, generation))
          .ifPresent(failed -> {
            events.warning(failed, "ArchiveMissing", message);
            StasisMetrics.checkpointFinished(failed.getStatus());
          });
      return UpdateControl.noUpdate();
    }
    String message = "stored " + status.archive.storedBytes + " bytes at " + status.archive.uri + " (" + lost
        + "; Completed from that record)";
    statusWriter.update(checkpoint, c -> isRunningOn(c, node), c -> {
      CheckpointStatus s = c.getStatus();
      s.phase = CheckpointPhase.Completed;
      s.completionTime = Conditions.now();
      s.reason = "Completed";
      s.message = message;
      Conditions.set(s, Conditions.COMPLETE, true, "Completed", message, generation);
      s.stopRetrying("Completed", message, generation);
    }).ifPresent(done -> {
      events.normal(done, "Completed", message);
      StasisMetrics.checkpointFinished(done.getStatus());
    });
    return UpdateControl.noUpdate();
  }

  private static boolean isRunningOn(Checkpoint c, String node) {
    return c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Running && node.equals(c.getStatus().node)
        && RecordedArchive.isRecorded(c);
  }

  /** Deletes a finished Checkpoint once its spec.ttl has run out; until then, comes back when it will have. */
  private UpdateControl<Checkpoint> expireWhenDue(Checkpoint checkpoint) {
    Optional<Duration> left = CheckpointExpiry.timeLeft(checkpoint, clock.instant());
    if (left.isEmpty() || checkpoint.isMarkedForDeletion()) {
      return UpdateControl.noUpdate();
    }
    if (!left.get().isNegative() && !left.get().isZero()) {
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(left.get());
    }
    client.resource(checkpoint).delete();
    events.normal(checkpoint, "Expired", "deleted: its ttl of " + checkpoint.getSpec().ttl + " has run out");
    return UpdateControl.noUpdate();
  }

  /**
   * Deletion waits while Restores still read the archive: shown on the Checkpoint as condition
   * {@value #ARCHIVE_IN_USE} and, once, an Event of that reason.
   */
  private void keepForReaders(Checkpoint checkpoint, List<Restore> readers) {
    String message = "deletion waits: the archive is kept until " + ArchiveReaders.describe(readers)
        + " no longer need" + (readers.size() == 1 ? "s" : "") + " it";
    boolean first = !Conditions.isTrue(checkpoint.getStatus().conditions, ARCHIVE_IN_USE);
    statusWriter.update(checkpoint, c -> c.getStatus() != null, c -> Conditions.set(c.getStatus(), ARCHIVE_IN_USE, true,
        ARCHIVE_IN_USE, message, c.getMetadata().getGeneration()));
    if (first) {
      events.normal(checkpoint, ARCHIVE_IN_USE, message);
    }
  }

  /**
   * Deletes the stored archive with the resource; or, when spec.retainArchive says to keep it, marks
   * it as kept on purpose so that the storage's garbage collector leaves it alone.
   */
  @Override
  public DeleteControl cleanup(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus status = checkpoint.getStatus();
    if (status == null || status.storage == null) {
      return DeleteControl.defaultDelete();
    }
    List<Restore> readers = ArchiveReaders.of(client, checkpoint);
    if (!readers.isEmpty()) {
      keepForReaders(checkpoint, readers);
      return DeleteControl.noFinalizerRemoval().rescheduleAfter(READERS_POLL);
    }
    if (!checkpointImages.deletedWith(checkpoint)) {
      return DeleteControl.noFinalizerRemoval().rescheduleAfter(CheckpointImages.RETRY);
    }
    boolean retain = checkpoint.getSpec() != null && Boolean.TRUE.equals(checkpoint.getSpec().retainArchive);
    CheckpointStorage storage = storages.find(status.storage);
    if (storage == null) {
      if (!retain) {
        events.warning(checkpoint, "ArchiveNotDeleted", "CheckpointStorage '" + status.storage
            + "' no longer exists; the archive (if any) was left where it was");
      }
      return DeleteControl.defaultDelete();
    }
    var meta = checkpoint.getMetadata();
    ArchiveLayout layout = new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid());
    try (ObjectStore store = storages.open(storage)) {
      if (retain) {
        if (!store.list(layout.prefix()).isEmpty()) {
          store.put(layout.retainedMarkerKey(), ("kept when Checkpoint " + meta.getNamespace() + "/" + meta.getName()
              + " was deleted at " + Conditions.now() + ", as its spec.retainArchive says\n").getBytes(StandardCharsets.UTF_8));
        }
        log.info("kept archive {} of deleted checkpoint {}/{}", store.uri(layout.prefix()), meta.getNamespace(),
            meta.getName());
      } else {
        store.deleteAll(layout.prefix());
        log.info("deleted archive {} of checkpoint {}/{}", store.uri(layout.prefix()), meta.getNamespace(),
            meta.getName());
      }
      return DeleteControl.defaultDelete();
    } catch (IOException e) {
      events.warning(checkpoint, retain ? "ArchiveNotMarked" : "ArchiveDeleteFailed",
          "could not " + (retain ? "mark the kept archive" : "delete the archive") + " yet, retrying in "
              + CLEANUP_RETRY.toSeconds() + "s: " + e.getMessage());
      return DeleteControl.noFinalizerRemoval().rescheduleAfter(CLEANUP_RETRY);
    }
  }
}
