package dev.stasis.agent;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Compatibility;
import dev.stasis.api.Conditions;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.RestoreOptions;
import dev.stasis.criu.RestoredTree;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.WorkGrants;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restores the checkpoints the operator placed on this node: the manifest, checked against the
 * digest the Checkpoint's status recorded; a pre-flight check that this node can run the checkpoint
 * (its CPU, the paths it needs); download, verify and unpack in one pass (CRIU sees no byte before
 * the archive matched the sha256 and size the status recorded), then {@code criu restore}. The agent's CRIU
 * child stays the restored tree's parent, so the agent sees the tree exit and nothing is left a zombie.
 */
@ControllerConfiguration(name = "node-restore", generationAwareEventProcessing = false)
public class NodeRestoreWorker extends NodeJob implements Reconciler<Restore> {
  private static final Logger log = LoggerFactory.getLogger(NodeRestoreWorker.class);
  private static final Duration RESTORE_TIMEOUT = Duration.ofMinutes(10);

  private final Preflight preflight;
  private final PodRestoreJob podRestores;

  public NodeRestoreWorker(NodeWork work) {
    super(work);
    this.preflight = new Preflight(config.criu(), config.hostRoot());
    this.podRestores = new PodRestoreJob(work);
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore restore, Context<Restore> context) {
    RestoreStatus status = restore.getStatus();
    if (status == null || !config.nodeName().equals(status.node)) {
      return UpdateControl.noUpdate();
    }
    boolean pod = status.phase != null && !status.phase.isTerminal() && podRestores.podCheckpoint(restore) != null;
    if (status.phase == RestorePhase.Pending && shutdown.acceptsWork()) {
      var untilRetry = RetryPolicy.untilRetry(status, Instant.now());
      if (untilRetry.isPresent()) {
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(untilRetry.get());
      }
      if (!storages.grantReady(restore)) {
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(GRANT_WAIT);
      }
      return work.enqueue(restore, this::isPendingHere, pod ? podRestores::push : this::restore)
          .map(UpdateControl.<Restore>noUpdate()::rescheduleAfter).orElse(UpdateControl.noUpdate());
    } else if (status.phase == RestorePhase.Restoring && !work.queue.holds(restore.getMetadata().getUid())) {
      if (pod) {
        podRestores.resolveAbandoned(restore);
        return UpdateControl.noUpdate();
      }
      return resolveAbandoned(restore);
    }
    return UpdateControl.noUpdate();
  }

  private boolean isPendingHere(Restore r) {
    return isPendingOn(r, config.nodeName());
  }

  static boolean isPendingOn(Restore r, String node) {
    return r.getStatus() != null && r.getStatus().phase == RestorePhase.Pending && node.equals(r.getStatus().node);
  }

  /** Back to Pending for another attempt. */
  static void backToPending(Restore r) {
    r.getStatus().phase = RestorePhase.Pending;
    r.getStatus().startTime = null;
  }

  private static boolean isRestoring(Restore r) {
    return r.getStatus() != null && r.getStatus().phase == RestorePhase.Restoring;
  }

  /** Runs in one of the node's work slots (see {@link NodeWork#enqueue}). */
  private void restore(Restore restore) {
    var restoring = statusWriter.update(restore, this::isPendingHere, r -> {
      r.getStatus().startAttempt();
      r.getStatus().phase = RestorePhase.Restoring;
      r.getStatus().startTime = Conditions.now();
      r.getStatus().message = "pre-flight check of this node, then download and verification of the archive"
          + NodeWork.attemptOf(r.getStatus(), r.getSpec().backoffLimitOrDefault());
    });
    if (restoring.isEmpty()) {
      return;
    }
    restore = restoring.get();
    Path workDir = workDir(restore);
    Path images = workDir.resolve("images");
    Checkpoint checkpoint;
    List<String> putBack;
    try {
      checkpoint = checkpoint(restore);
      work.processTargets.requireRestorable(restore.getMetadata().getNamespace());
      CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
      WorkGrants.Grant grant = storages.grant(restore);
      try (ObjectStore store = storages.open(storage, grant)) {
        RecordedManifest recorded = storages.manifest(store, checkpoint, null);
        requireCriu();
        preflight(restore, recorded.manifest(), workDir);
        requireRoomFor(recorded, workDir);
        download(store, recorded, storages.decryptionKey(recorded, grant).orElse(null), images);
        putBack = TravellingFiles.putBack(recorded.manifest().paths, images, config.hostRoot());
      }
    } catch (PreflightFailed failure) {
      WorkDirs.delete(workDir);
      if (restore.getSpec().placementOrDefaults().retryOtherNodes()) {
        handBack(restore, failure);
      } else {
        fail(restore, failure);
      }
      return;
    } catch (WorkFailure failure) {
      WorkDirs.delete(workDir);
      failOrRetry(restore, failure);
      return;
    } catch (RuntimeException e) {
      WorkDirs.delete(workDir);
      log.error("restore {} failed unexpectedly", restore.getMetadata().getName(), e);
      fail(restore, new WorkFailure("AgentError", "the agent failed unexpectedly: " + e));
      return;
    }
    // From here on CRIU runs. Its note, log and pid file in the work folder are what tells whether
    // a tree was restored, so the folder stays until the outcome is in the status.
    RestoredTree tree;
    try {
      tree = start(checkpoint.getSpec().optionsOrDefaults(), images, workDir);
    } catch (WorkFailure failure) {
      Restore failed = restore;
      recordUntilWritten("the failure of restore " + restore.getMetadata().getName(), () -> fail(failed, failure));
      WorkDirs.delete(workDir);
      return;
    }
    Restore restored = restore;
    String travelled = putBack.isEmpty() ? "" : "; put back " + putBack.size() + " file(s) that travelled with the"
        + " checkpoint: " + String.join(", ", putBack.subList(0, Math.min(putBack.size(), 5)))
        + (putBack.size() > 5 ? " and " + (putBack.size() - 5) + " more" : "");
    recordUntilWritten("restore " + restore.getMetadata().getName() + " as PID " + tree.pid(),
        () -> complete(restored, tree.pid(), "restored on node " + config.nodeName() + " as PID " + tree.pid()
            + travelled));
    // After the report: the tree runs, and deleting a GiB of images takes a quarter of a second.
    WorkDirs.delete(images);
    watch(restore, tree.pid(), tree.onExit(), workDir);
  }

  /**
   * Only failures before CRIU ran reach here as transient (reading the manifest or the archive from
   * storage): CRIU's own failures are never retried, so a retry cannot leave two restored copies.
   */
  private void failOrRetry(Restore restore, WorkFailure failure) {
    int backoffLimit = restore.getSpec().backoffLimitOrDefault();
    if (work.retryLater(restore, NodeRestoreWorker::isRestoring, failure, backoffLimit, NodeRestoreWorker::backToPending)) {
      return;
    }
    fail(restore, failure.afterAttempts(restore.getStatus().attempts(), backoffLimit));
  }

  private Checkpoint checkpoint(Restore restore) throws WorkFailure {
    String name = restore.checkpointName();
    // Only ever the Restore's own namespace, whatever the spec says (the operator checked too).
    Checkpoint checkpoint = client.resources(Checkpoint.class)
        .inNamespace(restore.getMetadata().getNamespace()).withName(name).get();
    if (checkpoint == null || checkpoint.getStatus() == null || checkpoint.getStatus().archive == null) {
      throw new WorkFailure("CheckpointNotFound", "Checkpoint '" + name + "' or its archive is gone");
    }
    return checkpoint;
  }

  /** The archive the Checkpoint recorded, at the key the layout gives, checked against the recorded sha256. */
  private void download(ObjectStore store, RecordedManifest recorded, BoundKey decryptWith, Path images)
      throws WorkFailure {
    String key = recorded.archiveKey();
    try (InputStream in = StasisMetrics.meteredDownload(config.nodeName(), store.open(key))) {
      new ArchiveReader().extract(in, images, recorded.manifest().archive.codec, recorded.archive(), decryptWith);
    } catch (ArchiveAuthenticationException e) {
      throw new WorkFailure("ArchiveNotAuthentic", e.getMessage());
    } catch (ArchiveIntegrityException e) {
      throw new WorkFailure("ArchiveCorrupted", e.getMessage());
    } catch (ObjectNotFoundException e) {
      throw new WorkFailure("ArchiveMissing", "the archive is missing (" + e.getMessage()
          + ") although its manifest exists; restore another checkpoint");
    } catch (IOException e) {
      if (String.valueOf(e.getMessage()).contains(Criu.NO_SPACE)) {
        throw new WorkFailure("WorkDirFull", "unpacking the archive into " + images + " failed: the work folder is"
            + " full (" + Criu.NO_SPACE + "); free space there or give the agent a larger --work-dir");
      }
      throw new WorkFailure("DownloadFailed", "downloading " + store.uri(key) + " failed: " + e.getMessage());
    }
  }

  /** The images unpacked take what the archive held before compression: without that room, nothing is downloaded. */
  private void requireRoomFor(RecordedManifest recorded, Path workDir) throws WorkFailure {
    long needed = recorded.archive().sizeBytes();
    long free;
    try {
      free = WorkDirs.usableSpace(workDir);
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot tell the free space in the work folder " + workDir + ": "
          + e.getMessage());
    }
    if (free < needed) {
      throw new WorkFailure("WorkDirFull", "the work folder " + workDir + " on node " + config.nodeName() + " has "
          + free + " bytes free, the checkpoint's images need " + needed + ": nothing was downloaded. Free space there,"
          + " give the agent a larger --work-dir, or restore on another node (spec.placement)");
    }
  }

  private void preflight(Restore restore, Manifest manifest, Path workDir) throws WorkFailure {
    boolean strict = restore.getSpec().placementOrDefaults().compatibilityOrDefault() == Compatibility.Strict;
    preflight.check(manifest, strict, workDir, config.nodeName());
  }

  /**
   * retryOtherNodes: the Restore goes back to Pending without a node, with this node's pre-flight
   * failure recorded, and the operator places it on the next candidate.
   */
  private void handBack(Restore restore, WorkFailure failure) {
    String message = failure.getMessage() + "; retrying on another node (spec.placement.retryOtherNodes)";
    statusWriter.update(restore, NodeRestoreWorker::isRestoring, r -> {
      RestoreStatus s = r.getStatus();
      s.phase = RestorePhase.Pending;
      s.node = null;
      s.startTime = null;
      s.reason = failure.reason();
      s.message = message;
      recordPreflightFailure(s, failure);
      Conditions.set(s, Conditions.COMPLETE, false, failure.reason(), message, r.getMetadata().getGeneration());
    }).ifPresent(handed -> events.warning(handed, failure.reason(), message));
  }

  private void recordPreflightFailure(RestoreStatus status, WorkFailure failure) {
    if (status.placement == null) {
      status.placement = new PlacementStatus();
    }
    status.placement.preflightFailures.add(
        new PlacementStatus.PreflightFailure(config.nodeName(), failure.reason(), failure.getMessage()));
  }

  private void requireCriu() throws WorkFailure {
    try {
      config.criu().requireUsable();
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage() + " (node " + config.nodeName() + ")");
    }
  }

  private RestoredTree start(CheckpointOptions options, Path images, Path workDir) throws WorkFailure {
    var restoreOptions = new RestoreOptions(images, workDir, Boolean.TRUE.equals(options.tcpEstablished),
        Boolean.TRUE.equals(options.fileLocks), Boolean.TRUE.equals(options.shellJob),
        options.externalMounts == null ? List.of() : options.externalMounts, RESTORE_TIMEOUT);
    try {
      return config.criu().restore(restoreOptions);
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot prepare the work folder " + workDir + ": " + e.getMessage());
    }
  }

  private Optional<Restore> complete(Restore restore, Integer pid, String message) {
    return statusWriter.update(restore, NodeRestoreWorker::isRestoring, r -> {
      RestoreStatus s = r.getStatus();
      s.phase = RestorePhase.Completed;
      s.completionTime = Conditions.now();
      s.restoredPid = pid;
      s.processState = "Running";
      s.reason = "Restored";
      s.message = message;
      Conditions.set(s, Conditions.COMPLETE, true, "Restored", message, r.getMetadata().getGeneration());
      s.stopRetrying("Restored", message, r.getMetadata().getGeneration());
    }).map(done -> {
      events.normal(done, "Restored", message);
      StasisMetrics.restoreFinished(done.getStatus());
      return done;
    });
  }

  /** Reports the end of the restored tree, which CRIU reaps for us, and cleans up after it. */
  private void watch(Restore restore, int pid, CompletableFuture<?> exit, Path workDir) {
    watch(restore, " (PID " + pid + ")", exit, workDir);
  }

  private void watch(Restore restore, String pid, CompletableFuture<?> exit, Path workDir) {
    exit.thenRun(() -> {
      WorkDirs.delete(workDir);
      try {
        Restore current = client.resource(restore).get();
        if (current == null) {
          return;
        }
        statusWriter.update(current, r -> r.getStatus() != null && r.getStatus().phase == RestorePhase.Completed,
            r -> r.getStatus().processState = "Exited");
        events.normal(current, "ProcessExited", "the restored process tree" + pid + " ended");
      } catch (RuntimeException e) {
        log.warn("could not report the end of restore {}: {}", restore.getMetadata().getName(), e.getMessage());
      }
    });
  }

  private Optional<Restore> fail(Restore restore, WorkFailure failure) {
    log.warn("restore {}/{} failed: {} {}", restore.getMetadata().getNamespace(), restore.getMetadata().getName(),
        failure.reason(), failure.getMessage());
    return statusWriter.update(restore, NodeRestoreWorker::isRestoring, r -> {
      RestoreStatus s = r.getStatus();
      s.fail(failure.reason(), failure.getMessage(), r.getMetadata().getGeneration());
      s.criuLogTail = failure.logTail();
      if (failure instanceof PreflightFailed) {
        recordPreflightFailure(s, failure);
      }
    }).map(failed -> {
      events.warning(failed, failure.reason(), failure.getMessage());
      StasisMetrics.restoreFinished(failed.getStatus());
      return failed;
    });
  }

  private Path workDir(Restore restore) {
    return config.workDir().resolve("restores").resolve(restore.getMetadata().getUid());
  }

  /**
   * A restore left Restoring by an agent that died (or whose status write failed) is never tried
   * again: its CRIU may outlive the agent and restore the tree anyway, and a second attempt could
   * make two copies of it. What happened is decided from what CRIU left in the work folder: a tree
   * it restored that still runs is taken over (Completed); one that was restored and has ended
   * since is Completed and Exited; without "Restore finished successfully" in CRIU's log nothing
   * was restored, the restore fails and only then is its work folder deleted.
   */
  private UpdateControl<Restore> resolveAbandoned(Restore cached) {
    Restore restore = client.resource(cached).get();
    if (restore == null || !isRestoring(restore) || work.queue.holds(restore.getMetadata().getUid())) {
      return UpdateControl.noUpdate();
    }
    Path workDir = workDir(restore);
    Optional<Integer> restored = Criu.restoredIn(workDir);
    if (restored.isPresent()) {
      adopt(restore, restored.get(), workDir);
      return UpdateControl.noUpdate();
    }
    if (Criu.stillRunningIn(workDir).isPresent()) {
      // Without the restore's -d, CRIU stays the tree's parent and runs as long as the tree.
      return UpdateControl.<Restore>noUpdate().rescheduleAfter(ABANDONED_CRIU_POLL);
    }
    if (Criu.restoreFinishedIn(workDir)) {
      endedSinceRestored(restore, workDir);
      return UpdateControl.noUpdate();
    }
    String what = Criu.startedIn(workDir) ? "; CRIU did not finish restoring, so nothing was restored" : "; nothing was restored";
    fail(restore, new WorkFailure("AgentRestarted", "the agent on node " + config.nodeName()
        + " restarted while this restore ran" + what + ": create a new Restore"));
    WorkDirs.delete(workDir);
    return UpdateControl.noUpdate();
  }

  private void adopt(Restore restore, int pid, Path workDir) {
    WorkDirs.delete(workDir.resolve("images"));
    complete(restore, pid, "restored on node " + config.nodeName() + " as PID " + pid
        + " (the agent restarted meanwhile and took the running tree over)");
    ProcessHandle.of(pid).ifPresentOrElse(tree -> watch(restore, pid, tree.onExit(), workDir),
        () -> watch(restore, pid, CompletableFuture.completedFuture(null), workDir));
  }

  /** CRIU restored the tree, and it ended before an agent could report it: both are the truth. */
  private void endedSinceRestored(Restore restore, Path workDir) {
    Optional<Integer> pid = Criu.restoredPidIn(workDir);
    complete(restore, pid.orElse(null), "restored on node " + config.nodeName() + pid.map(p -> " as PID " + p).orElse("")
        + "; the tree has ended since (the agent restarted meanwhile)");
    watch(restore, pid.map(p -> " (PID " + p + ")").orElse(""), CompletableFuture.completedFuture(null), workDir);
  }
}
