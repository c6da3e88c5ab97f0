package dev.stasis.agent.checkpoint;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.checkpoint.StreamingArchiveUpload.WhileDumping;
import dev.stasis.agent.process.NodeProcess;
import dev.stasis.agent.process.ProcessInventory;
import dev.stasis.agent.process.ProcessTree;
import dev.stasis.agent.process.TravellingFiles;
import dev.stasis.agent.profile.NodeFingerprint;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.work.NodeJob;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.agent.work.WorkDirs;
import dev.stasis.agent.work.WorkProgress;
import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointStats;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.ProgressStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.CriuVersion;
import dev.stasis.criu.DumpOptions;
import dev.stasis.criu.DumpStats;
import dev.stasis.criu.PostDumpHook;
import dev.stasis.criu.RunningDump;
import dev.stasis.kube.RecordedArchive;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.kube.WorkGrants;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.ObjectUpload;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes the process checkpoints the operator assigned to this node: CRIU dump into a work folder,
 * uploaded in one streamed pass of tar, zstd and sha256 ({@link StreamingArchiveUpload}: while CRIU
 * still writes the memory pages when the tree stays frozen until stored, else once CRIU is done, so
 * as not to stretch the freeze), the manifest written last as the commit marker. A
 * workload is only ever ended (leaveRunning: false) once its checkpoint is stored and recorded, and
 * then by CRIU itself, which holds it frozen meanwhile ({@link PostDumpHook}).
 */
final class ProcessCheckpointJob extends NodeJob<Checkpoint> {
  private static final Logger log = LoggerFactory.getLogger(ProcessCheckpointJob.class);
  /** How soon to look again at a recorded archive the storage could not be read for. */
  private static final Duration RECORDED_ARCHIVE_RETRY = Duration.ofSeconds(10);
  /** How long a decision for a dead agent's frozen tree waits for CRIU to act on it. */
  private static final Duration ABANDONED_HOOK_WAIT = Duration.ofSeconds(30);

  /**
   * One dump of a process at a time: CRIU cannot seize a tree another CRIU holds, and a schedule's
   * Replace or a node drain may ask for a checkpoint while one is taken. One small lock per PID.
   */
  private final KeyedLocks<Integer> processLocks = new KeyedLocks<>();
  private final WorkingFolderLocks workingFolders = new WorkingFolderLocks();

  ProcessCheckpointJob(NodeWork work) {
    super(work);
  }

  /**
   * What needs no slot is checked before the checkpoint waits for one: a wrong PID or a process
   * the namespace may not checkpoint fails at once, not after the node's queue, and takes no slot
   * from work that can run. Checked again when its turn comes (the process may end meanwhile).
   */
  @Override
  public boolean refusedBeforeQueueing(Checkpoint checkpoint) {
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
      work.checkpoints.refuseBeforeStart(checkpoint, config.nodeName(), refusal.reason(), refusal.getMessage());
      return true;
    }
  }

  @Override
  public void take(Checkpoint checkpoint) {
    int pid = checkpoint.getSpec().target.process.pid;
    CheckpointOptions options = checkpoint.getSpec().optionsOrDefaults();
    var running = start(checkpoint, pid);
    if (running.isEmpty()) {
      return; // a stale copy: this checkpoint was taken already
    }
    checkpoint = running.get();
    Path workDir = workDir(checkpoint);
    long started = System.nanoTime();
    Stored stored;
    try {
      events.normal(checkpoint, "Started", "checkpointing PID " + pid + " on node " + config.nodeName());
      CriuVersion criuVersion = requireCriu();
      NodeProcess target = requireTarget(checkpoint, pid);
      CheckpointStorage storage = requireStorage(checkpoint);
      WorkGrants.Grant grant = storages.grant(checkpoint);
      try (ObjectStore store = storages.open(storage, grant)) {
        Optional<Stored> kept = dumpAndStore(checkpoint, target, store, StorageBinding.codec(storage),
            storages.encryptionKey(storage, grant, identity(checkpoint)).orElse(null), grant.chunkKey().orElse(null),
            options, workDir, criuVersion, started);
        if (kept.isEmpty()) {
          WorkDirs.delete(workDir);
          return;
        }
        stored = kept.get();
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
    String message = "stored " + stored.archive().storedBytes + " bytes at " + stored.archive().uri;
    recordUntilWritten("checkpoint " + stored.checkpoint().getMetadata().getName() + " as Completed",
        () -> work.checkpoints.complete(stored.checkpoint(), stored.archive(), stored.stats(), message));
    // Only now: deleting a GiB of images takes a quarter of a second, which Completed need not wait for.
    WorkDirs.delete(workDir);
  }

  /** A checkpoint whose archive is stored and committed (and recorded, if its workload was ended). */
  private record Stored(Checkpoint checkpoint, ArchiveStatus archive, CheckpointStats stats) {}

  /**
   * One dump of the process at a time: CRIU dumps the tree while its archive streams into the
   * store, and the manifest is written last. A workload is ended (leaveRunning: false) only once
   * its archive is stored, committed and recorded, by CRIU, which holds the tree frozen until then;
   * if anything fails before, CRIU resumes it as if never touched. Empty when the Checkpoint was
   * deleted meanwhile (its archive is discarded, a tree still held frozen resumed).
   */
  private Optional<Stored> dumpAndStore(Checkpoint checkpoint, NodeProcess target, ObjectStore store,
      ArchiveCodec codec, BoundKey encryptWith, ChunkKey chunkKey, CheckpointOptions options, Path workDir,
      CriuVersion criuVersion, long started) throws WorkFailure {
    int pid = Math.toIntExact(target.pid());
    try (KeyedLocks.Held processLock = processLocks.lock(pid)) {
      List<Long> members = ProcessTree.members(pid);
      RestoreRequirements requirements = RestoreRequirements.observe(config.criu(), members, workDir);
      DumpOptions dump = dumpOptions(pid, workDir, options, requirements.inventory());
      Criu.DumpResult dumped = null;
      CommittedManifest manifest;
      List<TravellingFiles.Captured> travelling = List.of();
      RunningDump dumping = null;
      try {
        // The upload starts with CRIU (and waits for it, unless the tree stays frozen until stored);
        // if CRIU fails, closing the upload aborts it. The progress
        // ends with the upload, before the archive is recorded.
        // While CRIU holds the tree frozen, this thread is what it waits for: at CRIU's own priority.
        try (WorkProgress progress = work.progress(checkpoint, work.checkpoints);
            StreamingArchiveUpload upload = startUpload(checkpoint, store, codec, encryptWith, chunkKey,
                dump.imagesDir(), dump.endTree() ? WhileDumping.ARCHIVE : WhileDumping.WAIT, progress);
            AgentShutdown.Registration cutOff = shutdown.cutOffOnStop(upload::cutOff);
            CpuPriority.Held serving = dump.holdFrozen() ? CpuPriority.currentThreadAt(Criu.DUMP_NICE) : () -> {}) {
          progress.step(ProgressStatus.DUMPING, ProcessTree.memoryBytes(members));
          // Held until CRIU's parasite code has left every process of the tree (it works in their
          // working folders): the tree frozen and dumped, or, without the hook, CRIU exited.
          try (KeyedLocks.Held folders = workingFolders.lock(members)) {
            TargetProcess.require(checkpoint); // CRIU takes a number: the last look before it seizes whatever has it
            dumping = startDump(dump);
            if (dump.holdFrozen()) {
              awaitFrozen(dumping);
              travelling = TravellingFiles.capture(dump.imagesDir(), requirements.inventory(),
                  config.travellingLimits());
            } else {
              dumped = awaitExit(dumping);
            }
          }
          progress.step(ProgressStatus.UPLOADING, WorkDirs.bytesIn(dump.imagesDir()));
          if (!target.isRunning()) { // the PID changed hands in the moment before CRIU seized it
            throw TargetProcess.changed(checkpoint, pid);
          }
          if (dump.holdFrozen() && !dump.endTree()) {
            dumped = leaveRunning(dumping);
          }
          manifest = store(checkpoint, store, upload, codec, encryptWith, dump, criuVersion, requirements, travelling);
        }
        if (isDeleted(checkpoint)) {
          discard(checkpoint, store);
          return Optional.empty(); // closing the dump below resumes a tree still held, before its work folder goes
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
      return Optional.of(new Stored(checkpoint, manifest.archiveStatus(store),
          stats(dumped == null ? null : dumped.stats(), started)));
    }
  }

  /**
   * Pending → Running, recording the process this checkpoint is of, which every attempt must find
   * under the PID: the one its spec pins (a schedule's checkpoints), else the one the first attempt
   * finds there. A failure to write Running propagates: nothing ran, and NodeWork queues it again.
   */
  private Optional<Checkpoint> start(Checkpoint checkpoint, int pid) {
    Optional<ProcessIdentity> identity = checkpoint.getSpec().target.process.pinned()
        .map(pinned -> NodeProcess.of(pinned).toStatus())
        .or(() -> NodeProcess.find(pid).map(NodeProcess::toStatus));
    identity.ifPresent(process -> process.node = config.nodeName());
    return work.checkpoints.start(checkpoint, config.nodeName(), "checkpointing PID " + pid + " with CRIU", s -> {
      if (s.process == null) {
        identity.ifPresent(process -> s.process = process);
      }
    });
  }

  /** The process under the PID, checked again now that its turn has come: still the one recorded, and one this namespace may checkpoint. */
  private NodeProcess requireTarget(Checkpoint checkpoint, int pid) throws WorkFailure {
    ProcessTree.requireCheckpointable(pid);
    NodeProcess target = TargetProcess.require(checkpoint);
    // The operator cannot see the node's processes: only the agent can tell whose a PID is.
    work.processTargets.requireCheckpointable(checkpoint.getMetadata().getNamespace(), pid);
    return target;
  }

  private CheckpointStorage requireStorage(Checkpoint checkpoint) throws WorkFailure {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    var notAllowed = StorageBinding.refusal(storage, checkpoint.getMetadata().getNamespace());
    if (notAllowed.isPresent()) {
      throw new WorkFailure("StorageNotAllowed", notAllowed.get());
    }
    return storage;
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
      recorded = work.checkpoints.recordArchive(checkpoint, archive, "stored " + archive.storedBytes + " bytes at "
          + archive.uri + "; ending the workload (leaveRunning: false)");
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
      store.deleteAll(RecordedManifest.layout(checkpoint).prefix());
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
    String prefix = RecordedManifest.layout(checkpoint).prefix();
    try {
      store.deleteAll(prefix);
      log.info("checkpoint {}/{} was deleted while it was taken: its archive was discarded", meta.getNamespace(),
          meta.getName());
    } catch (IOException e) {
      log.warn("checkpoint {}/{} was deleted while it was taken; its archive {} is left to the storage's garbage"
          + " collector: {}", meta.getNamespace(), meta.getName(), store.uri(prefix), e.getMessage());
    }
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
        ProcessTree.options(options), Duration.ofSeconds(options.timeoutSecondsOrDefault()));
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

  /** A tree held frozen that the checkpoint leaves running: CRIU resumes it, and says how the dump went. */
  private static Criu.DumpResult leaveRunning(RunningDump running) throws WorkFailure {
    try {
      running.decide(PostDumpHook.Decision.PROCEED);
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    }
    return awaitExit(running);
  }

  /** How the dump went, once CRIU has exited (and, without the hook, left the tree running). */
  private static Criu.DumpResult awaitExit(RunningDump running) throws WorkFailure {
    try {
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

  /** @param chunkKey the namespace's chunk key when the checkpoint is deduplicated (granted so), else null */
  private StreamingArchiveUpload startUpload(Checkpoint checkpoint, ObjectStore store, ArchiveCodec codec,
      BoundKey encryptWith, ChunkKey chunkKey, Path imagesDir, WhileDumping whileDumping, WorkProgress progress)
      throws WorkFailure {
    ArchiveLayout layout = RecordedManifest.layout(checkpoint);
    String archiveKey = layout.archiveKey(codec);
    ChunkedImagesUpload chunkedImages = chunkKey == null ? null
        : new ChunkedImagesUpload(store, layout, chunkKey, encryptWith != null, codec);
    try {
      ObjectUpload upload = shutdown.track(StasisMetrics.meteredUpload(config.nodeName(), store.upload(archiveKey)));
      return StreamingArchiveUpload.start(upload, codec, encryptWith, chunkedImages, imagesDir, whileDumping,
          StreamingArchiveUpload.DEFAULT_CHUNK_BYTES, progress::done, checkpoint.getMetadata().getName());
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
    ArchiveLayout layout = RecordedManifest.layout(checkpoint);
    String archiveKey = layout.archiveKey(codec);
    try {
      StreamingArchiveUpload.Uploaded uploaded = upload.finish();
      Manifest manifest = manifest(checkpoint, dump, criuVersion, archiveKey, codec, uploaded.archive());
      if (encryptedWith != null) {
        manifest.archive.encryption = Manifest.Encryption.with(encryptedWith);
      }
      long newBytes = uploaded.archive().storedBytes();
      if (uploaded.chunks() != null) {
        manifest.chunked(uploaded.chunks().chunks());
        newBytes += uploaded.chunks().newBytes();
        StasisMetrics.chunksUploaded(config.nodeName(), uploaded.chunks().newBytes());
        log.info("checkpoint {}/{}: {} of {} chunks were new ({} bytes uploaded); {} of {} image bytes cut before the"
            + " dump was complete", checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(),
            uploaded.chunks().uploadedChunks(), uploaded.chunks().distinctChunks(), uploaded.chunks().newBytes(),
            uploaded.chunks().cutWhileWriting(), uploaded.chunks().chunks().imagesBytes);
        for (StoredPackIndexes.Untrusted index : uploaded.chunks().untrustedPackIndexes()) {
          events.warning(checkpoint, "PackIndexUntrusted", "the pack index " + index.uri() + " was not used: "
              + index.reason() + "; the chunks it lists were stored again, and the storage's collector removes that pack"
              + " when no checkpoint refers to it");
        }
      }
      requirements.recordIn(manifest, dump.imagesDir(), travelling);
      return CommittedManifest.put(store, layout.manifestKey(), manifest, newBytes);
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

  private static ArchiveIdentity identity(Checkpoint checkpoint) {
    return ArchiveIdentity.ofProcess(checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getUid());
  }

  private Manifest manifest(Checkpoint checkpoint, DumpOptions dump, CriuVersion criuVersion, String archiveKey,
      ArchiveCodec codec, ArchiveSummary summary) {
    Manifest m = CheckpointManifest.of(checkpoint, config.nodeName(), NodeFingerprint.profile(client, config.nodeName()),
        archiveKey, codec, summary);
    m.source.pid = dump.pid();
    m.criu = new Manifest.Criu();
    m.criu.version = criuVersion.toString();
    m.criu.options = dump.recordedOptions();
    m.tcpEstablished = dump.tree().tcpEstablished();
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

  /** A transient failure with attempts left goes back to Pending for another attempt; any other fails it. */
  private void fail(Checkpoint checkpoint, WorkFailure cause) {
    WorkFailure explained = shutdown.explain(cause, config.nodeName());
    int backoffLimit = checkpoint.getSpec().backoffLimitOrDefault();
    if (work.retryLater(work.checkpoints, checkpoint, explained, backoffLimit)) {
      log.info("checkpoint {}/{} attempt {} failed, retrying: {} {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), checkpoint.getStatus().attempts(), explained.reason(), explained.getMessage());
      return;
    }
    WorkFailure failure = explained.afterAttempts(checkpoint.getStatus().attempts(), backoffLimit);
    log.warn("checkpoint {}/{} failed: {} {}", checkpoint.getMetadata().getNamespace(),
        checkpoint.getMetadata().getName(), failure.reason(), failure.getMessage());
    work.checkpoints.fail(checkpoint, failure.reason(), failure.getMessage(), failure.logTail());
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
  @Override
  public Optional<Duration> resolveAbandoned(Checkpoint checkpoint) {
    Path workDir = workDir(checkpoint);
    if (Criu.stillRunningIn(workDir).isPresent()) {
      if (PostDumpHook.waitingIn(workDir)) {
        decideForTheDeadAgent(checkpoint, workDir);
      }
      return Optional.of(ABANDONED_CRIU_POLL);
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
    return Optional.empty();
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
  private Optional<Duration> finishFromRecord(Checkpoint checkpoint, Path workDir) {
    Optional<String> mismatch;
    try {
      mismatch = recordedArchiveMismatch(checkpoint);
    } catch (IOException | WorkFailure e) {
      log.warn("cannot read the recorded archive of checkpoint {}/{} yet: {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), e.getMessage());
      return Optional.of(RECORDED_ARCHIVE_RETRY);
    }
    String restarted = "the agent on node " + config.nodeName() + " restarted after it had stored and recorded this"
        + " checkpoint's archive";
    if (mismatch.isPresent()) {
      String resumed = PostDumpHook.decidedIn(workDir).filter(PostDumpHook.Decision.RESUME::equals).isPresent()
          ? "; the workload, still frozen, was resumed" : "; the workload may have been ended (leaveRunning: false)";
      String message = restarted + ", and the storage no longer holds it: " + mismatch.get() + resumed
          + ". Not tried again: take a new checkpoint";
      log.warn("checkpoint {}/{} failed: ArchiveMissing {}", checkpoint.getMetadata().getNamespace(),
          checkpoint.getMetadata().getName(), message);
      work.checkpoints.failFromRecord(checkpoint, config.nodeName(), "ArchiveMissing", message);
    } else {
      String ended = PostDumpHook.decidedIn(workDir).filter(PostDumpHook.Decision.PROCEED::equals).isPresent()
          ? "; CRIU, which still held the workload frozen, ended it as leaveRunning: false asks" : "";
      ArchiveStatus archive = checkpoint.getStatus().archive;
      work.checkpoints.completeFromRecord(checkpoint, config.nodeName(), "stored " + archive.storedBytes + " bytes at "
          + archive.uri + " (" + restarted + ", and finished it from that record" + ended + ")");
    }
    WorkDirs.delete(workDir);
    return Optional.empty();
  }

  /** {@link RecordedArchive#mismatch} in the checkpoint's storage. */
  private Optional<String> recordedArchiveMismatch(Checkpoint checkpoint) throws IOException, WorkFailure {
    try (ObjectStore store = storages.open(storages.find(checkpoint.getStatus().storage), storages.grant(checkpoint))) {
      return RecordedArchive.mismatch(store, checkpoint);
    }
  }
}
