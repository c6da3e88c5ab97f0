package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.SealedGrant;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.kube.CheckpointLifecycle;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RecordedArchive;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.retention.ArchiveReaders;
import dev.stasis.operator.retention.CheckpointExpiry;
import dev.stasis.operator.retention.ChunkSweepLock;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.api.model.Pod;
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
  /** How often a Checkpoint that waits for its storage's chunk collection asks again. */
  static final Duration CHUNK_COLLECTION_POLL = Duration.ofSeconds(5);

  private final KubernetesClient client;
  private final ClusterCache cluster;
  private final StorageBinding storages;
  private final CheckpointLifecycle lifecycle;
  private final EventRecorder events;
  private final RefusalRetries retries;
  private final AgentLoss agentLoss;
  private final GrantIssuer grants;
  private final CheckpointImages checkpointImages;
  private final Clock clock;
  private final ChunkSweepLock chunkLock;

  /** @param chunkLock shared with the {@link CheckpointStorageReconciler}, which sweeps chunks */
  public CheckpointReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events,
      RetryPolicy retryPolicy, ChunkSweepLock chunkLock) {
    this(client, cluster, events, retryPolicy, chunkLock, Clock.systemUTC());
  }

  CheckpointReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events, RetryPolicy retryPolicy,
      ChunkSweepLock chunkLock, Clock clock) {
    this.chunkLock = chunkLock;
    this.client = client;
    this.cluster = cluster;
    this.clock = clock;
    this.storages = new StorageBinding(client, cluster);
    this.lifecycle = new CheckpointLifecycle(client, events, StasisMetrics::checkpointFinished);
    this.events = events;
    this.retries = new RefusalRetries(retryPolicy, clock);
    this.agentLoss = new AgentLoss(cluster, clock);
    this.grants = new GrantIssuer(cluster, storages, new ChunkSecrets(client), GrantIssuer.ChunkKeyGate.of(chunkLock));
    this.checkpointImages = new CheckpointImages(client, storages, new StatusWriter(client), events, clock);
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus observed = checkpoint.getStatus();
    if (observed != null && observed.phase != null && observed.phase != CheckpointPhase.Pending) {
      // the agent's now, or finished
      if (observed.phase.isTerminal()) {
        chunkLock.finished(checkpoint.getMetadata().getUid());
        lifecycle.observeGeneration(checkpoint);
        return expireWhenDue(checkpoint);
      }
      return agentsWork(checkpoint);
    }
    if (isAssigned(checkpoint)) {
      return agentsWork(checkpoint);
    }
    Optional<Duration> retryDue = retries.untilRetry(observed);
    if (retryDue.isPresent()) {
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(retryDue.get());
    }
    try {
      CheckpointValidator.Assignment assignment = CheckpointValidator.validate(checkpoint, observed(checkpoint));
      CheckpointStorage storage = usableStorage(checkpoint);
      assign(checkpoint, assignment, storage);
    } catch (GrantIssuer.ChunkCollectionRunning waiting) {
      lifecycle.waitForChunkCollection(checkpoint, waiting.getMessage());
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(CHUNK_COLLECTION_POLL);
    } catch (Refusal refusal) {
      Optional<Duration> retryIn = retries.retryLater(lifecycle, checkpoint, refusal, backoffLimit(checkpoint),
          CheckpointLifecycle.pending(checkpoint));
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

  private static boolean isAssigned(Checkpoint checkpoint) {
    CheckpointStatus status = checkpoint.getStatus();
    return status != null && status.node != null
        && status.node.equals(Labels.node(checkpoint));
  }

  private CheckpointStorage usableStorage(Checkpoint checkpoint) throws Refusal {
    try {
      return CheckpointValidator.requireUsable(storages.resolve(checkpoint.getSpec().storage),
          checkpoint.getMetadata().getNamespace());
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageNotFound", e.getMessage());
    }
  }

  /** What validation needs of the cluster, looked up when it asks. */
  private CheckpointValidator.Observed observed(Checkpoint checkpoint) {
    return new CheckpointValidator.Observed() {
      @Override
      public boolean hasAgent(String node) {
        return cluster.nodeProfile(node) != null;
      }

      @Override
      public Pod pod(String name) {
        return client.pods().inNamespace(checkpoint.getMetadata().getNamespace()).withName(name).get();
      }
    };
  }

  private void assign(Checkpoint checkpoint, CheckpointValidator.Assignment assignment, CheckpointStorage usable)
      throws Refusal, GrantIssuer.ChunkCollectionRunning {
    SealedGrant grant = grants.forCheckpoint(checkpoint, usable, assignment.node(),
        containerNames(assignment.containers())).orElse(null);
    lifecycle.assign(checkpoint, assignment.node(), usable.getMetadata().getName(), grant, assignment.containers());
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
        lifecycle.reseal(checkpoint, grant);
      } catch (Refusal | GrantIssuer.ChunkCollectionRunning notNow) {
        log.warn("cannot seal the grant of checkpoint {}/{} again: {}", checkpoint.getMetadata().getNamespace(),
            checkpoint.getMetadata().getName(), notNow.getMessage());
      }
    }
    return failWhenAgentGone(checkpoint);
  }

  private void fail(Checkpoint checkpoint, Refusal refusal) {
    retries.fail(lifecycle, checkpoint, refusal, backoffLimit(checkpoint), CheckpointLifecycle.refused(checkpoint));
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
    return agentLoss.failWhenGone(checkpoint, lifecycle, gone -> gone + (pending
        ? ": the checkpoint was not taken and the process was not touched"
        : ", in the middle of this checkpoint: nothing was stored as complete. A process it left stopped "
            + "(leaveRunning: false) is resumed when the agent starts again")
        + "; take a new checkpoint once the agent runs");
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
    if (mismatch.isPresent()) {
      lifecycle.failFromRecord(checkpoint, node, "ArchiveMissing", lost + "; and the storage no longer holds the archive: "
          + mismatch.get() + ". Take a new checkpoint");
    } else {
      lifecycle.completeFromRecord(checkpoint, node, "stored " + status.archive.storedBytes + " bytes at "
          + status.archive.uri + " (" + lost + "; Completed from that record)");
    }
    return UpdateControl.noUpdate();
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

  /** Deletion waits while Restores still read the archive: the Checkpoint shows so (condition ArchiveInUse). */
  private void keepForReaders(Checkpoint checkpoint, List<Restore> readers) {
    lifecycle.markArchiveInUse(checkpoint, "deletion waits: the archive is kept until " + ArchiveReaders.describe(readers)
        + " no longer need" + (readers.size() == 1 ? "s" : "") + " it");
  }

  /**
   * Deletes the stored archive with the resource; or, when spec.retainArchive says to keep it, marks
   * it as kept on purpose so that the storage's garbage collector leaves it alone.
   */
  @Override
  public DeleteControl cleanup(Checkpoint checkpoint, Context<Checkpoint> context) {
    chunkLock.finished(checkpoint.getMetadata().getUid());
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
    ArchiveLayout layout = RecordedManifest.layout(checkpoint);
    try (ObjectStore store = storages.open(storage)) {
      if (retain) {
        if (!store.list(layout.prefix()).isEmpty()) {
          store.put(layout.retainedMarkerKey(), ("kept when Checkpoint " + meta.getNamespace() + "/" + meta.getName()
              + " was deleted at " + Conditions.now() + ", as its spec.retainArchive says\n").getBytes(StandardCharsets.UTF_8));
        }
        log.info("kept archive {} of deleted checkpoint {}/{}", store.uri(layout.prefix()), meta.getNamespace(),
            meta.getName());
      } else {
        StorageGarbageCollector.deleteCheckpoint(store, layout);
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
