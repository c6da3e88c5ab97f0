package dev.stasis.agent;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStats;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.CriuVersion;
import dev.stasis.criu.DumpOptions;
import dev.stasis.criu.DumpStats;
import dev.stasis.criu.PostDumpHook;
import dev.stasis.criu.RunningDump;
import dev.stasis.kube.RecordedArchive;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.ObjectUpload;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes the checkpoints the operator assigned to this node: CRIU dump into a work folder, uploaded
 * in one streamed pass of tar, zstd and sha256 that starts while CRIU still writes the memory
 * pages ({@link StreamingArchiveUpload}), the manifest written last as the commit marker. A
 * workload is only ever ended (leaveRunning: false) once its checkpoint is stored and recorded, and
 * then by CRIU itself, which holds it frozen meanwhile ({@link PostDumpHook}).
 */
@ControllerConfiguration(name = "node-checkpoint", generationAwareEventProcessing = false)
public class NodeCheckpointWorker extends NodeJob implements Reconciler<Checkpoint> {
  private static final Logger log = LoggerFactory.getLogger(NodeCheckpointWorker.class);

  /**
   * One dump of a process at a time: CRIU cannot seize a tree another CRIU holds, and a schedule's
   * Replace or a node drain may ask for a checkpoint while one is taken. One small lock per PID.
   */
  private final KeyedLocks<Integer> processLocks = new KeyedLocks<>();
  /** How soon to look again at a recorded archive the storage could not be read for. */
  private static final Duration RECORDED_ARCHIVE_RETRY = Duration.ofSeconds(10);
  /** How long a decision for a dead agent's frozen tree waits for CRIU to act on it. */
  private static final Duration ABANDONED_HOOK_WAIT = Duration.ofSeconds(30);
  private final WorkingFolderLocks workingFolders = new WorkingFolderLocks();
  private final PodCheckpointJob podCheckpoints;

  public NodeCheckpointWorker(NodeWork work) {
    super(work);
    this.podCheckpoints = new PodCheckpointJob(work, this::startAttempt);
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint checkpoint, Context<Checkpoint> context) {
    CheckpointStatus status = checkpoint.getStatus();
    if (status == null || !config.nodeName().equals(status.node)) {
      return UpdateControl.noUpdate(); // not handed over to this node yet
    }
    boolean pod = checkpoint.getSpec().target.pod != null;
    if (status.phase == CheckpointPhase.Pending && shutdown.acceptsWork()) {
      var untilRetry = RetryPolicy.untilRetry(status, Instant.now());
      if (untilRetry.isPresent()) {
        return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(untilRetry.get());
      }
      if (!storages.grantReady(checkpoint)) {
        return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(GRANT_WAIT);
      }
      if (!pod && refusedBeforeQueueing(checkpoint)) {
        return UpdateControl.noUpdate();
      }
      return work.enqueue(checkpoint, this::isPendingHere, pod ? podCheckpoints::take : this::take)
          .map(UpdateControl.<Checkpoint>noUpdate()::rescheduleAfter).orElse(UpdateControl.noUpdate());
    } else if (status.phase == CheckpointPhase.Running && !work.queue.holds(checkpoint.getMetadata().getUid())) {
      if (pod) {
        podCheckpoints.resolveAbandoned(checkpoint);
      } else {
        return resolveAbandoned(checkpoint);
      }
    }
    return UpdateControl.noUpdate();
  }

  /**
   * What needs no slot is checked before the checkpoint waits for one: a wrong PID or a process
   * the namespace may not checkpoint fails at once, not after the node's queue, and takes no slot
   * from work that can run. Checked again when its turn comes (the process may end meanwhile).
   */
  private boolean refusedBeforeQueueing(Checkpoint checkpoint) {
    try {
      ProcessTree.requireCheckpointable(checkpoint.getSpec().target.process.pid);
      work.processTargets.requireCheckpointable(checkpoint.getMetadata().getNamespace(),
          checkpoint.getSpec().target.process.pid);
      requireCriu();
      return false;
    } catch (WorkFailure refusal) {
      log.warn("checkpoint {}/{} refused: {} {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), refusal.reason(), refusal.getMessage());
      // an attempt that ended before it needed a slot: counted, never retried (bad input)
      statusWriter.update(checkpoint, this::isPendingHere, c -> {
        c.getStatus().startAttempt();
        WorkFailure failure = refusal.afterAttempts(c.getStatus().attempts(),
            c.getSpec().backoffLimitOrDefault());
        c.getStatus().fail(failure.reason(), failure.getMessage(), c.getMetadata().getGeneration());
      }).ifPresent(failed -> {
        events.warning(failed, failed.getStatus().reason, failed.getStatus().message);
        StasisMetrics.checkpointFinished(failed.getStatus());
      });
      return true;
    }
  }

  private void take(Checkpoint checkpoint) {
    int pid = checkpoint.getSpec().target.process.pid;
    CheckpointOptions options = checkpoint.getSpec().optionsOrDefaults();
    // The process this checkpoint is of, which every attempt must find under the PID: the one its
    // spec pins (a schedule's checkpoints), else the one the first attempt finds there.
    Optional<ProcessIdentity> identity = checkpoint.getSpec().target.process.pinned()
        .map(pinned -> NodeProcess.of(pinned).toStatus())
        .or(() -> NodeProcess.find(pid).map(NodeProcess::toStatus));
    identity.ifPresent(process -> process.node = config.nodeName());
    // A failure to write Running propagates: nothing ran, and NodeWork queues it again.
    var running = startAttempt(checkpoint, "checkpointing PID " + pid + " with CRIU", s -> {
      if (s.process == null) {
        identity.ifPresent(process -> s.process = process);
      }
    });
    if (running.isEmpty()) {
      return; // a stale copy: this checkpoint was taken already
    }
    checkpoint = running.get();
    Path workDir = workDir(checkpoint);
    long started = System.nanoTime();
    Checkpoint stored;
    ArchiveStatus archive;
    CheckpointStats stats;
    try {
      events.normal(checkpoint, "Started", "checkpointing PID " + pid + " on node " + config.nodeName());

      CriuVersion criuVersion = requireCriu();
      ProcessTree.requireCheckpointable(pid);
      NodeProcess target = TargetProcess.require(checkpoint);
      // The operator cannot see the node's processes: only the agent can tell whose a PID is.
      work.processTargets.requireCheckpointable(checkpoint.getMetadata().getNamespace(), pid);
      CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
      var notAllowed = StorageBinding.refusal(storage, checkpoint.getMetadata().getNamespace());
      if (notAllowed.isPresent()) {
        throw new WorkFailure("StorageNotAllowed", notAllowed.get());
      }
      WorkGrants.Grant grant = storages.grant(checkpoint);
      try (ObjectStore store = storages.open(storage, grant)) {
        ArchiveCodec codec = StorageBinding.codec(storage);
        BoundKey encryptWith = storages.encryptionKey(storage, grant, identity(checkpoint)).orElse(null);
        Criu.DumpResult dumped = null;
        CommittedManifest manifest;
        try (KeyedLocks.Held processLock = processLocks.lock(pid)) {
          List<Long> members = ProcessTree.members(pid);
          RestoreRequirements requirements = RestoreRequirements.observe(config.criu(), members, workDir);
          DumpOptions dump = dumpOptions(pid, workDir, options, requirements.inventory());
          List<TravellingFiles.Captured> travelling = List.of();
          RunningDump dumping = null;
          try {
            // The upload runs while CRIU dumps; if CRIU fails, closing the upload aborts it.
            // While CRIU holds the tree frozen, this thread is what it waits for: at CRIU's own priority.
            try (StreamingArchiveUpload upload = startUpload(checkpoint, store, codec, encryptWith, dump.imagesDir());
                CpuPriority.Held serving = dump.holdFrozen() ? CpuPriority.currentThreadAt(Criu.DUMP_NICE) : () -> {}) {
              try (KeyedLocks.Held folders = workingFolders.lock(members)) {
                TargetProcess.require(checkpoint); // CRIU takes a number: the last look before it seizes whatever has it
                dumping = startDump(dump);
                if (dump.holdFrozen()) {
                  awaitFrozen(dumping);
                  travelling = TravellingFiles.capture(dump.imagesDir(), requirements.inventory(),
                      config.travellingLimits());
                }
              }
              if (!target.isRunning()) { // the PID changed hands in the moment before CRIU seized it
                throw TargetProcess.changed(checkpoint, pid);
              }
              if (!dump.endTree()) {
                dumped = leaveRunning(dumping, dump);
              }
              manifest = store(checkpoint, store, upload, codec, encryptWith, dump, criuVersion, requirements,
                  travelling);
            }
            if (isDeleted(checkpoint)) {
              discard(checkpoint, store);
              dumping.close(); // a tree still held frozen is resumed, before its work folder goes
              WorkDirs.delete(workDir);
              return;
            }
            if (dump.endTree()) {
              checkpoint = recordStored(checkpoint, store, manifest);
              dumped = endTree(dumping, checkpoint); // stored, committed and recorded: only now may the workload end
            }
          } finally {
            if (dumping != null) {
              dumping.close(); // resumes a tree still held frozen: nothing was stored, or kept
            }
          }
        }
        stored = checkpoint;
        archive = manifest.archiveStatus(store);
        stats = stats(dumped == null ? null : dumped.stats(), started);
      }
    } catch (WorkFailure failure) {
      WorkDirs.delete(workDir);
      fail(checkpoint, failure);
      return;
    } catch (RuntimeException e) {
      WorkDirs.delete(workDir);
      log.error("checkpoint {} failed unexpectedly", checkpoint.getMetadata().getName(), e);
      fail(checkpoint, new WorkFailure("AgentError", "the agent failed unexpectedly: " + e));
      return;
    }
    // Stored (and, if the workload was ended, recorded): from here on there is nothing to undo.
    String message = "stored " + archive.storedBytes + " bytes at " + archive.uri;
    Checkpoint done = stored;
    recordUntilWritten("checkpoint " + done.getMetadata().getName() + " as Completed",
        () -> complete(done, archive, stats, message));
    // Only now: deleting a GiB of images takes a quarter of a second, which Completed need not wait for.
    WorkDirs.delete(workDir);
  }

  /**
   * Before a workload is ended (leaveRunning: false), its stored archive is recorded in the status
   * (phase still Running). An agent that dies after the kill, or cannot write Completed, leaves that
   * record: the next one finishes the checkpoint from it instead of deleting the only copy of the
   * workload. Not recorded, the workload is not ended: the archive is deleted and the tree resumed.
   */
  private Checkpoint recordStored(Checkpoint checkpoint, ObjectStore store, CommittedManifest manifest)
      throws WorkFailure {
    ArchiveStatus archive = manifest.archiveStatus(store);
    Optional<Checkpoint> recorded;
    try {
      recorded = statusWriter.update(checkpoint, NodeCheckpointWorker::isRunning, c -> {
        c.getStatus().archive = archive;
        c.getStatus().message = "stored " + archive.storedBytes + " bytes at " + archive.uri
            + "; ending the workload (leaveRunning: false)";
      });
    } catch (KubernetesClientException e) {
      throw notRecorded(checkpoint, store, new WorkFailure("ApiServerUnavailable", "the API server did not take the"
          + " record of the stored archive (" + e.getMessage() + "): the workload was not ended and nothing was kept"));
    }
    if (recorded.isEmpty()) {
      throw notRecorded(checkpoint, store, new WorkFailure("CheckpointNotRunning", "the checkpoint stopped running on"
          + " this node before its archive was recorded: the workload was not ended and nothing was kept"));
    }
    return recorded.get();
  }

  private static WorkFailure notRecorded(Checkpoint checkpoint, ObjectStore store, WorkFailure failure) {
    try {
      store.deleteAll(layout(checkpoint).prefix());
    } catch (IOException e) {
      failure.addSuppressed(e); // left to the storage's garbage collector
    }
    return failure;
  }

  private boolean isDeleted(Checkpoint checkpoint) {
    Checkpoint now = client.resource(checkpoint).get();
    return now == null || now.isMarkedForDeletion()
        || !checkpoint.getMetadata().getUid().equals(now.getMetadata().getUid());
  }

  /**
   * The Checkpoint was deleted while it was taken (a schedule's Replace, or a person): no one will
   * ask for this archive, and a workload stopped for it goes on as if never touched.
   */
  private void discard(Checkpoint checkpoint, ObjectStore store) {
    var meta = checkpoint.getMetadata();
    String prefix = new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid()).prefix();
    try {
      store.deleteAll(prefix);
      log.info("checkpoint {}/{} was deleted while it was taken: its archive was discarded", meta.getNamespace(),
          meta.getName());
    } catch (IOException e) {
      log.warn("checkpoint {}/{} was deleted while it was taken; its archive {} is left to the storage's garbage"
          + " collector: {}", meta.getNamespace(), meta.getName(), store.uri(prefix), e.getMessage());
    }
  }

  private boolean isPendingHere(Checkpoint c) {
    return c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Pending
        && config.nodeName().equals(c.getStatus().node);
  }

  static boolean isRunning(Checkpoint c) {
    return c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Running;
  }

  /**
   * Writes Running for a new attempt ({@code doing} says what it does), if the checkpoint still
   * waits on this node; empty for a stale copy, whose checkpoint was taken already.
   */
  Optional<Checkpoint> startAttempt(Checkpoint checkpoint, String doing) {
    return startAttempt(checkpoint, doing, s -> {});
  }

  /** As {@link #startAttempt(Checkpoint, String)}, recording more in the same write. */
  private Optional<Checkpoint> startAttempt(Checkpoint checkpoint, String doing, Consumer<CheckpointStatus> record) {
    return statusWriter.update(checkpoint, this::isPendingHere, c -> {
      record.accept(c.getStatus());
      c.getStatus().startAttempt();
      c.getStatus().phase = CheckpointPhase.Running;
      c.getStatus().startTime = Conditions.now();
      c.getStatus().message = doing + NodeWork.attemptOf(c.getStatus(), c.getSpec().backoffLimitOrDefault());
    });
  }

  private CriuVersion requireCriu() throws WorkFailure {
    try {
      return config.criu().requireUsable();
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage() + " (node " + config.nodeName() + ")");
    }
  }

  /**
   * CRIU holds the dumped tree frozen when the checkpoint ends it (leaveRunning: false: until the
   * archive is stored, committed and recorded, then CRIU ends it itself, under its network lock, so
   * no connection is touched in between) and when the tree holds files on tmpfs, which travel with
   * the checkpoint and are copied while nothing changes them. Otherwise the dump is bare CRIU's.
   */
  private static DumpOptions dumpOptions(int pid, Path workDir, CheckpointOptions options, ProcessInventory inventory) {
    boolean endTree = !options.leaveRunning();
    return new DumpOptions(pid, workDir.resolve("images"), workDir, endTree, endTree || inventory.holdsTmpfsFiles(),
        Boolean.TRUE.equals(options.tcpEstablished), Boolean.TRUE.equals(options.fileLocks),
        Boolean.TRUE.equals(options.shellJob), options.externalMounts == null ? List.of() : options.externalMounts,
        Duration.ofSeconds(options.timeoutSecondsOrDefault()));
  }

  private RunningDump startDump(DumpOptions options) throws WorkFailure {
    try {
      return config.criu().startDump(options);
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot prepare the work folder " + options.workDir() + ": " + e.getMessage());
    }
  }

  private static void awaitFrozen(RunningDump running) throws WorkFailure {
    try {
      running.awaitFrozen();
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    }
  }

  /** A tree the checkpoint leaves running: CRIU resumes it, if it holds it frozen, and says how the dump went. */
  private static Criu.DumpResult leaveRunning(RunningDump running, DumpOptions dump) throws WorkFailure {
    try {
      if (dump.holdFrozen()) {
        running.decide(PostDumpHook.Decision.PROCEED);
      }
      return running.awaitExit();
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    }
  }

  /**
   * The archive is stored, committed and recorded: CRIU ends the tree, as it does after a plain
   * {@code criu dump}, under its network lock. Whatever CRIU says then, the checkpoint stands.
   */
  private static Criu.DumpResult endTree(RunningDump running, Checkpoint checkpoint) {
    try {
      running.decide(PostDumpHook.Decision.PROCEED);
      return running.awaitExit();
    } catch (CriuException e) {
      log.warn("checkpoint {}/{} is stored and recorded, but CRIU did not end its tree cleanly: {} {}",
          checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(), e.reason(), e.getMessage());
      return null;
    }
  }

  private StreamingArchiveUpload startUpload(Checkpoint checkpoint, ObjectStore store, ArchiveCodec codec,
      BoundKey encryptWith, Path imagesDir) throws WorkFailure {
    String archiveKey = layout(checkpoint).archiveKey(codec);
    try {
      ObjectUpload upload = shutdown.track(StasisMetrics.meteredUpload(config.nodeName(), store.upload(archiveKey)));
      return StreamingArchiveUpload.start(upload, codec, encryptWith, imagesDir,
          StreamingArchiveUpload.DEFAULT_CHUNK_BYTES, checkpoint.getMetadata().getName());
    } catch (IOException e) {
      throw storageFailed(store, archiveKey, e);
    }
  }

  /**
   * Archive first, manifest last: a checkpoint whose manifest exists is whole. Anything written
   * before a failure is removed again, so no half-written archive is ever left to be mistaken.
   */
  private CommittedManifest store(Checkpoint checkpoint, ObjectStore store, StreamingArchiveUpload upload,
      ArchiveCodec codec, BoundKey encryptedWith, DumpOptions dump, CriuVersion criuVersion,
      RestoreRequirements requirements, List<TravellingFiles.Captured> travelling)
      throws WorkFailure {
    ArchiveLayout layout = layout(checkpoint);
    String archiveKey = layout.archiveKey(codec);
    try {
      ArchiveSummary summary = upload.finish();
      Manifest manifest = manifest(checkpoint, dump, criuVersion, archiveKey, codec, summary);
      if (encryptedWith != null) {
        manifest.archive.encryption = Manifest.Encryption.with(encryptedWith);
      }
      requirements.recordIn(manifest, dump.imagesDir(), travelling);
      return CommittedManifest.put(store, layout.manifestKey(), manifest);
    } catch (IOException e) {
      try {
        store.deleteAll(layout.prefix());
      } catch (IOException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw storageFailed(store, archiveKey, e);
    }
  }

  private static WorkFailure storageFailed(ObjectStore store, String archiveKey, IOException e) {
    return new WorkFailure("StorageFailed", "storing the archive in " + store.uri(archiveKey) + " failed: "
        + e.getMessage() + "; nothing was kept and the workload was not ended");
  }

  private static ArchiveLayout layout(Checkpoint checkpoint) {
    var meta = checkpoint.getMetadata();
    return new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid());
  }

  private static ArchiveIdentity identity(Checkpoint checkpoint) {
    return ArchiveIdentity.ofProcess(checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getUid());
  }

  private Manifest manifest(Checkpoint checkpoint, DumpOptions dump, CriuVersion criuVersion, String archiveKey,
      ArchiveCodec codec, ArchiveSummary summary) {
    var meta = checkpoint.getMetadata();
    Manifest m = new Manifest();
    m.createdAt = Conditions.now();
    m.source = new Manifest.Source();
    m.source.namespace = meta.getNamespace();
    m.source.checkpointName = meta.getName();
    m.source.checkpointUid = meta.getUid();
    m.source.node = config.nodeName();
    m.source.pid = dump.pid();
    m.nodeProfile = NodeFingerprint.asMap(NodeFingerprint.profile(client, config.nodeName()));
    m.criu = new Manifest.Criu();
    m.criu.version = criuVersion.toString();
    m.criu.options = dump.recordedOptions();
    m.tcpEstablished = dump.tcpEstablished();
    m.archive = new Manifest.Archive();
    m.archive.key = archiveKey;
    m.archive.codec = codec;
    m.archive.sizeBytes = summary.sizeBytes();
    m.archive.storedBytes = summary.storedBytes();
    m.archive.sha256 = summary.sha256();
    return m;
  }

  private static CheckpointStats stats(DumpStats dumpStats, long started) {
    CheckpointStats stats = new CheckpointStats();
    if (dumpStats != null) {
      stats.freezingTimeMicros = dumpStats.freezingTimeMicros();
      stats.frozenTimeMicros = dumpStats.frozenTimeMicros();
      stats.memoryDumpTimeMicros = dumpStats.memoryDumpTimeMicros();
      stats.memoryWriteTimeMicros = dumpStats.memoryWriteTimeMicros();
      stats.pagesScanned = dumpStats.pagesScanned();
      stats.pagesWritten = dumpStats.pagesWritten();
    }
    stats.totalTimeMillis = Duration.ofNanos(System.nanoTime() - started).toMillis();
    return stats;
  }

  private Optional<Checkpoint> complete(Checkpoint checkpoint, ArchiveStatus archive, CheckpointStats stats, String message) {
    return statusWriter.update(checkpoint, NodeCheckpointWorker::isRunning, c -> {
      CheckpointStatus s = c.getStatus();
      s.phase = CheckpointPhase.Completed;
      s.completionTime = Conditions.now();
      s.archive = archive;
      s.stats = stats;
      s.reason = "Completed";
      s.message = message;
      Conditions.set(s, Conditions.COMPLETE, true, "Completed", message, c.getMetadata().getGeneration());
      s.stopRetrying("Completed", message, c.getMetadata().getGeneration());
    }).map(done -> {
      events.normal(done, "Completed", message);
      StasisMetrics.checkpointFinished(done.getStatus());
      return done;
    });
  }

  /** A transient failure with attempts left goes back to Pending for another attempt; any other fails it. */
  private void fail(Checkpoint checkpoint, WorkFailure cause) {
    WorkFailure explained = shutdown.explain(cause, config.nodeName());
    int backoffLimit = checkpoint.getSpec().backoffLimitOrDefault();
    if (work.retryLater(checkpoint, NodeCheckpointWorker::isRunning, explained, backoffLimit, NodeCheckpointWorker::backToPending)) {
      log.info("checkpoint {}/{} attempt {} failed, retrying: {} {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), checkpoint.getStatus().attempts(), explained.reason(), explained.getMessage());
      return;
    }
    WorkFailure failure = explained.afterAttempts(checkpoint.getStatus().attempts(), backoffLimit);
    log.warn("checkpoint {}/{} failed: {} {}", checkpoint.getMetadata().getNamespace(),
        checkpoint.getMetadata().getName(), failure.reason(), failure.getMessage());
    statusWriter.update(checkpoint, NodeCheckpointWorker::isRunning, c -> {
      CheckpointStatus s = c.getStatus();
      s.fail(failure.reason(), failure.getMessage(), c.getMetadata().getGeneration());
      s.criuLogTail = failure.logTail();
    }).ifPresent(failed -> {
      events.warning(failed, failure.reason(), failure.getMessage());
      StasisMetrics.checkpointFinished(failed.getStatus());
    });
  }

  static void backToPending(Checkpoint c) {
    c.getStatus().phase = CheckpointPhase.Pending;
    c.getStatus().startTime = null;
  }

  private Path workDir(Checkpoint checkpoint) {
    return config.workDir().resolve("checkpoints").resolve(checkpoint.getMetadata().getUid());
  }

  /**
   * A checkpoint left Running by an agent that died (or could not write its outcome). First its
   * CRIU, which may outlive the agent, must have let go of the tree. If the agent had recorded the
   * stored archive, it may have ended the workload: the checkpoint is finished from the record and
   * never tried again. Otherwise that attempt failed (and is tried again if spec.backoffLimit
   * allows): a tree it left stopped is resumed, what it had stored (a partial upload) is deleted,
   * and so is its work folder.
   */
  private UpdateControl<Checkpoint> resolveAbandoned(Checkpoint cached) {
    Checkpoint checkpoint = client.resource(cached).get();
    if (checkpoint == null || !isRunning(checkpoint) || work.queue.holds(checkpoint.getMetadata().getUid())) {
      return UpdateControl.noUpdate(); // the cache lagged behind this agent's own final write
    }
    Path workDir = workDir(checkpoint);
    if (Criu.stillRunningIn(workDir).isPresent()) {
      if (PostDumpHook.waitingIn(workDir)) {
        decideForTheDeadAgent(checkpoint, workDir);
      }
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(ABANDONED_CRIU_POLL);
    }
    if (RecordedArchive.isRecorded(checkpoint)) {
      return finishFromRecord(checkpoint, workDir);
    }
    String resumed = PostDumpHook.decidedIn(workDir).filter(PostDumpHook.Decision.RESUME::equals).isPresent()
        ? "; the workload, held frozen after its dump, was resumed" : "";
    work.discardStored(checkpoint);
    WorkDirs.delete(workDir);
    fail(checkpoint, new WorkFailure("AgentRestarted",
        "the agent on node " + config.nodeName() + " restarted while this checkpoint ran" + resumed
            + "; what it had stored and its work folder were removed"));
    return UpdateControl.noUpdate();
  }

  /**
   * The agent died while its CRIU held the dumped tree frozen, waiting for its decision. The tree is
   * ended (CRIU proceeds, under its network lock) only if the stored archive was recorded and the
   * storage holds what was recorded; otherwise CRIU resumes it. A storage that cannot be read keeps
   * the tree frozen until it can. CRIU gets a while to act on it; the next pass resolves the rest.
   */
  private void decideForTheDeadAgent(Checkpoint checkpoint, Path workDir) {
    PostDumpHook.Decision decision = PostDumpHook.Decision.RESUME;
    if (RecordedArchive.isRecorded(checkpoint)) {
      try {
        if (recordedArchiveMismatch(checkpoint).isEmpty()) {
          decision = PostDumpHook.Decision.PROCEED;
        }
      } catch (IOException | WorkFailure e) {
        log.warn("cannot read the recorded archive of checkpoint {}/{} yet, its tree stays frozen: {}",
            checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(), e.getMessage());
        return;
      }
    }
    try (AutoCloseable answered = PostDumpHook.answerAbandoned(workDir, decision)) {
      long deadline = System.nanoTime() + ABANDONED_HOOK_WAIT.toNanos();
      while (Criu.stillRunningIn(workDir).isPresent() && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      log.warn("cannot tell the CRIU of checkpoint {}/{} what to do with its frozen tree: {}",
          checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(), e.getMessage());
    }
  }

  /**
   * The stored archive was recorded, so the workload may have been ended (leaveRunning: false).
   * When the storage holds what was recorded, the checkpoint is Completed (a tree CRIU still held
   * frozen was ended by it, as the spec asks). When it does not, the checkpoint fails for good, as
   * nothing can be taken again from a workload that may be gone (a tree still frozen was resumed).
   */
  private UpdateControl<Checkpoint> finishFromRecord(Checkpoint checkpoint, Path workDir) {
    Optional<String> mismatch;
    try {
      mismatch = recordedArchiveMismatch(checkpoint);
    } catch (IOException | WorkFailure e) {
      log.warn("cannot read the recorded archive of checkpoint {}/{} yet: {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), e.getMessage());
      return UpdateControl.<Checkpoint>noUpdate().rescheduleAfter(RECORDED_ARCHIVE_RETRY);
    }
    String restarted = "the agent on node " + config.nodeName() + " restarted after it had stored and recorded this"
        + " checkpoint's archive";
    if (mismatch.isPresent()) {
      String resumed = PostDumpHook.decidedIn(workDir).filter(PostDumpHook.Decision.RESUME::equals).isPresent()
          ? "; the workload, still frozen, was resumed" : "; the workload may have been ended (leaveRunning: false)";
      fail(checkpoint, new WorkFailure("ArchiveMissing", restarted + ", and the storage no longer holds it: "
          + mismatch.get() + resumed + ". Not tried again: take a new checkpoint"));
    } else {
      String ended = PostDumpHook.decidedIn(workDir).filter(PostDumpHook.Decision.PROCEED::equals).isPresent()
          ? "; CRIU, which still held the workload frozen, ended it as leaveRunning: false asks" : "";
      ArchiveStatus archive = checkpoint.getStatus().archive;
      complete(checkpoint, archive, null, "stored " + archive.storedBytes + " bytes at " + archive.uri + " (" + restarted
          + ", and finished it from that record" + ended + ")");
    }
    WorkDirs.delete(workDir);
    return UpdateControl.noUpdate();
  }

  /** {@link RecordedArchive#mismatch} in the checkpoint's storage. */
  private Optional<String> recordedArchiveMismatch(Checkpoint checkpoint) throws IOException, WorkFailure {
    try (ObjectStore store = storages.open(storages.find(checkpoint.getStatus().storage), storages.grant(checkpoint))) {
      return RecordedArchive.mismatch(store, checkpoint);
    }
  }
}
