package dev.stasis.kube;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStats;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.Conditions;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.SealedGrant;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Every way a Checkpoint's status moves, who moves it, and when it may (docs/lifecycles.md has the
 * table). Pending (the operator's until it assigns a node) → Pending on a node (that node's agent's)
 * → Running (the agent's) → Completed or Failed. The operator fails work whose agent is gone and
 * finishes it from the archive the agent recorded before it ended a workload; nobody moves a
 * Completed or Failed checkpoint.
 */
public final class CheckpointLifecycle extends WorkLifecycle<CheckpointStatus, Checkpoint> {
  /** The condition of a Checkpoint whose deletion waits for the Restores reading its archive. */
  public static final String ARCHIVE_IN_USE = "ArchiveInUse";

  /**
   * The condition (and reason) of a Pending Checkpoint that waits for its storage's collection of
   * its namespace's chunks to end before it is given the key to write chunks.
   */
  public static final String WAITING_FOR_CHUNK_COLLECTION = "WaitingForChunkCollection";

  /** @param finished told of every Checkpoint that ended (the role's metrics) */
  public CheckpointLifecycle(KubernetesClient client, EventRecorder events, Consumer<CheckpointStatus> finished) {
    super(client, events, finished);
  }

  @Override
  protected Object phase(CheckpointStatus status) {
    return status.phaseOrPending();
  }

  @Override
  protected boolean isPending(CheckpointStatus status) {
    return status.phase == CheckpointPhase.Pending;
  }

  /** Running: the agent's attempt. */
  @Override
  protected boolean isAgentsPart(CheckpointStatus status) {
    return status.phase == CheckpointPhase.Running;
  }

  @Override
  protected boolean isTerminal(CheckpointStatus status) {
    return status.phaseOrPending().isTerminal();
  }

  @Override
  protected void toPending(CheckpointStatus status) {
    status.phase = CheckpointPhase.Pending;
    status.startTime = null;
  }

  /** A fresh Pending status of {@code checkpoint}, for the operator's decisions before it assigns the work. */
  public static CheckpointStatus pending(Checkpoint checkpoint) {
    CheckpointStatus status = refused(checkpoint);
    status.phase = CheckpointPhase.Pending;
    return status;
  }

  /** A fresh status for the operator's refusal of {@code checkpoint}, which {@link #refuse} fills in. */
  public static CheckpointStatus refused(Checkpoint checkpoint) {
    CheckpointStatus status = new CheckpointStatus();
    status.target = target(checkpoint);
    return status;
  }

  /** For the TARGET column; the status keeps it from here on (the agents' writes change only their fields). */
  private static String target(Checkpoint checkpoint) {
    var spec = checkpoint.getSpec();
    return spec == null || spec.target == null ? null : spec.target.describe();
  }

  /**
   * assign, by the operator, of a Pending Checkpoint it validated: Pending on {@code node}, whose agent
   * takes it from the storage it resolved, with the grant sealed to that agent; for a pod, its
   * containers.
   */
  public Checkpoint assign(Checkpoint observed, String node, String storage, SealedGrant grant,
      List<ContainerCheckpointStatus> containers) {
    if (observed.getStatus() != null && !isPending(observed.getStatus()) && observed.getStatus().phase != null) {
      throw new IllegalStateException("checkpoint " + observed.getMetadata().getName() + " is "
          + observed.getStatus().phase + ", not Pending: only Pending work is assigned");
    }
    CheckpointStatus status = pending(observed);
    status.grant = grant;
    status.storage = storage;
    status.containers = containers;
    Checkpoint assigned = assign(observed, status, node);
    events.normal(assigned, "Assigned", "assigned to the agent on node " + node + ", storage " + storage);
    return assigned;
  }

  /**
   * wait, by the operator, before it assigns a Checkpoint it validated: the storage's collection of
   * the namespace's chunks runs, and no Checkpoint gets the key to write chunks meanwhile. Pending,
   * with the reason, message and condition {@value #WAITING_FOR_CHUNK_COLLECTION}; written only
   * when that changes, and without an Event (a collection takes seconds to minutes, then it goes on).
   */
  public void waitForChunkCollection(Checkpoint observed, String message) {
    CheckpointStatus waiting = pending(observed);
    waiting.attempts = observed.getStatus() == null ? null : observed.getStatus().attempts;
    waiting.reason = WAITING_FOR_CHUNK_COLLECTION;
    waiting.message = message;
    Conditions.set(waiting, WAITING_FOR_CHUNK_COLLECTION, true, WAITING_FOR_CHUNK_COLLECTION, message,
        observed.getMetadata().getGeneration());
    statusWriter.replace(observed, waiting);
  }

  /**
   * refuse before starting, by the agent of {@code node}: what needed no work slot (a PID that is not
   * there, a process the namespace may not checkpoint) already shows that the checkpoint cannot be
   * taken. Counted as an attempt, never tried again.
   */
  public Optional<Checkpoint> refuseBeforeStart(Checkpoint checkpoint, String node, String reason, String message) {
    return statusWriter.update(checkpoint, c -> isPendingOn(c, node), c -> {
      c.getStatus().startAttempt();
      c.getStatus().fail(reason, RetryPolicy.finalMessage(reason, message, c.getStatus().attempts(),
          c.getSpec().backoffLimitOrDefault()), c.getMetadata().getGeneration());
    }).map(this::endedBadly);
  }

  /**
   * start, by the agent of {@code node}: Pending there → Running, a new attempt that {@code doing}
   * describes; {@code record} adds to the same write. Empty for a stale copy, whose checkpoint was
   * taken (or moved on) already.
   */
  public Optional<Checkpoint> start(Checkpoint checkpoint, String node, String doing, Consumer<CheckpointStatus> record) {
    return statusWriter.update(checkpoint, c -> isPendingOn(c, node), c -> {
      record.accept(c.getStatus());
      c.getStatus().phase = CheckpointPhase.Running;
      started(c.getStatus(), doing, c.getSpec().backoffLimitOrDefault());
    });
  }

  /**
   * record the archive, by the agent, while Running: stored and committed, it is recorded before a
   * workload is ended (leaveRunning: false), so that the checkpoint can be finished from the record
   * should the agent die after the kill ({@link #completeFromRecord}).
   */
  public Optional<Checkpoint> recordArchive(Checkpoint checkpoint, ArchiveStatus archive, String message) {
    return statusWriter.update(checkpoint, this::isAgentsPart, c -> {
      c.getStatus().archive = archive;
      c.getStatus().message = message;
    });
  }

  /** complete, by the agent, a process checkpoint whose archive is stored: Running → Completed. */
  public Optional<Checkpoint> complete(Checkpoint checkpoint, ArchiveStatus archive, CheckpointStats stats,
      String message) {
    return complete(checkpoint, this::isAgentsPart, s -> {
      s.archive = archive;
      s.stats = stats;
    }, message);
  }

  /**
   * complete, by the agent, a pod checkpoint whose containers' archives are stored: Running →
   * Completed; {@code status.archive} is the archive when there is one container.
   */
  public Optional<Checkpoint> completePod(Checkpoint checkpoint, List<ContainerCheckpointStatus> stored,
      CheckpointStats stats, String message) {
    return complete(checkpoint, this::isAgentsPart, s -> {
      s.containers = stored;
      s.archive = stored.size() == 1 ? stored.get(0).archive : null;
      s.stats = stats;
    }, message);
  }

  /**
   * complete from the record, by the agent of a node that found the work of one that died, or by the
   * operator when that agent is gone: the archive recorded before a workload was ended is in the
   * storage as recorded. Only while Running on {@code node} with the record.
   */
  public Optional<Checkpoint> completeFromRecord(Checkpoint checkpoint, String node, String message) {
    return complete(checkpoint, c -> isRecordedOn(c, node), s -> {}, message);
  }

  /**
   * fail from the record: the recorded archive is not in the storage as recorded, and the workload
   * may have been ended, so it is never tried again. Same precondition as {@link #completeFromRecord}.
   */
  public Optional<Checkpoint> failFromRecord(Checkpoint checkpoint, String node, String reason, String message) {
    return fail(checkpoint, c -> isRecordedOn(c, node), reason, message, s -> {});
  }

  /**
   * mark the archive in use, by the operator: deletion waits while Restores still read the archive.
   * Condition {@value #ARCHIVE_IN_USE}, and its Event once.
   */
  public void markArchiveInUse(Checkpoint checkpoint, String message) {
    boolean first = !Conditions.isTrue(checkpoint.getStatus().conditions, ARCHIVE_IN_USE);
    statusWriter.update(checkpoint, c -> c.getStatus() != null, c -> Conditions.set(c.getStatus(), ARCHIVE_IN_USE, true,
        ARCHIVE_IN_USE, message, c.getMetadata().getGeneration()));
    if (first) {
      events.normal(checkpoint, ARCHIVE_IN_USE, message);
    }
  }

  private static boolean isRecordedOn(Checkpoint c, String node) {
    return c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Running && node.equals(c.getStatus().node)
        && RecordedArchive.isRecorded(c);
  }

  private Optional<Checkpoint> complete(Checkpoint checkpoint, Predicate<Checkpoint> precondition,
      Consumer<CheckpointStatus> record, String message) {
    return statusWriter.update(checkpoint, precondition, c -> {
      CheckpointStatus s = c.getStatus();
      s.phase = CheckpointPhase.Completed;
      record.accept(s);
      completed(s, "Completed", message, c.getMetadata().getGeneration());
    }).map(done -> endedWell(done, "Completed", message));
  }
}
